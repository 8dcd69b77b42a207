module github.com/thicket-edge/thicket/deploy

go 1.26.0

replace github.com/thicket-edge/thicket/contract => ../contract

require (
	github.com/thicket-edge/thicket/contract v0.0.0
	go.yaml.in/yaml/v3 v3.0.6
)
