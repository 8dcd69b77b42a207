module github.com/thicket-edge/thicket/bench

go 1.26.0

require (
	github.com/thicket-edge/thicket/contract v0.0.0
	github.com/thicket-edge/thicket/node_engine v0.0.0
)

replace (
	github.com/thicket-edge/thicket/contract => ../contract
	github.com/thicket-edge/thicket/node_engine => ../node_engine
)
