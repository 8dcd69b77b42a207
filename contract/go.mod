module github.com/thicket-edge/thicket/contract

go 1.24.0
