module github.com/thicket-edge/thicket/api

go 1.26.0
