module github.com/thicket-edge/thicket/deploy

go 1.26.0

replace (
	github.com/thicket-edge/thicket/contract => ../contract
	github.com/thicket-edge/thicket/node_engine => ../node_engine
)

require (
	github.com/thicket-edge/thicket/contract v0.0.0
	github.com/thicket-edge/thicket/node_engine v0.0.0
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/docker/cli v29.6.2+incompatible // indirect
	github.com/docker/docker-credential-helpers v0.9.3 // indirect
	github.com/google/go-containerregistry v0.21.9 // indirect
	github.com/klauspost/compress v1.19.1 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/sirupsen/logrus v1.9.4 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
