module github.com/thicket-edge/thicket/cli

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	github.com/thicket-edge/thicket/contract v0.0.0
	golang.org/x/term v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect

replace github.com/thicket-edge/thicket/contract => ../contract
