module github.com/thicket-edge/thicket/cluster_orchestrator

go 1.24.0
require github.com/thicket-edge/thicket/contract v0.0.0

replace github.com/thicket-edge/thicket/contract => ../contract
