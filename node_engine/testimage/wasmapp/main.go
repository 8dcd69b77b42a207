// Command wasmapp is the WebAssembly test module of Thicket's wasm runtime,
// compiled with GOOS=wasip1 GOARCH=wasm (see testimage.BuildWasm). It prints
// "hello from wasm", its arguments and $GREETING, then acts on its
// arguments:
//
//	wasmapp             exits 0
//	wasmapp exit N      exits with code N
//	wasmapp sleep S     sleeps S seconds, then exits 0 (to test stopping a
//	                    running module)
//	wasmapp alloc MB    allocates and touches MB MiB, then exits 0 (to test
//	                    the memory limit: fails under a smaller one)
//	wasmapp spin S      busy-loops for S seconds, then exits 0 (to test the
//	                    CPU limit)
//
// It is plain Go and also builds for the host, so that `go vet` covers it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	args := os.Args[1:]
	fmt.Printf("hello from wasm args=%q GREETING=%q\n", args, os.Getenv("GREETING"))
	if len(args) == 0 {
		return
	}
	switch args[0] {
	case "exit":
		code := intArg(args)
		fmt.Printf("exiting with code %d\n", code)
		os.Exit(code)
	case "sleep":
		secs := intArg(args)
		fmt.Printf("sleeping %d s\n", secs)
		time.Sleep(time.Duration(secs) * time.Second)
		fmt.Println("slept")
	case "alloc":
		mb := intArg(args)
		fmt.Printf("allocating %d MiB\n", mb)
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sum := 0
		for i := 0; i < len(b); i += 4096 {
			sum += int(b[i])
		}
		fmt.Printf("allocated %d MiB (%d pages touched)\n", mb, sum)
	case "spin":
		secs := intArg(args)
		fmt.Printf("spinning %d s\n", secs)
		end := time.Now().Add(time.Duration(secs) * time.Second)
		n := 0
		for time.Now().Before(end) {
			n++
		}
		fmt.Printf("spun %d times\n", n)
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", args[0])
		os.Exit(64)
	}
}

// intArg is the integer second argument.
func intArg(args []string) int {
	if len(args) < 2 {
		fmt.Fprintf(os.Stderr, "%s needs a number\n", args[0])
		os.Exit(64)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(64)
	}
	return n
}
