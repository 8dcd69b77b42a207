package testharness

import (
	"context"
	"fmt"
	"os"
)

// TB is the part of testing.TB the Must helpers use (this package does not
// import testing: the benchmark's program uses it too).
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
}

// FreePort is Port for a test.
func FreePort(t TB) int {
	t.Helper()
	p, err := Port()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// StopAtEnd stops p when the test ends, and logs the end of its output if
// the test failed.
func StopAtEnd(t TB, p *Proc) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", p.Name, Tail(p.Output(), 6000))
		}
	})
}

// MustStart starts p for the rest of the test (StopAtEnd).
func MustStart(t TB, p *Proc) *Proc {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatalf("%v", err)
	}
	StopAtEnd(t, p)
	return p
}

// MustNetwork makes a network for the rest of the test.
func MustNetwork(t TB, c NetworkConfig) *Network {
	t.Helper()
	n, err := NewNetwork(c)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// MustAddHost is AddHost for a test.
func (n *Network) MustAddHost(t TB, octet int) Host {
	t.Helper()
	h, err := n.AddHost(octet)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return h
}

// MustStartRoot is StartRoot for the rest of the test, on a new data dir
// if o has none.
func (b *Bin) MustStartRoot(t TB, o RootOptions) *Root {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	r, err := b.StartRoot(context.Background(), o)
	if err != nil {
		t.Fatalf("start thicket-root: %v", err)
	}
	StopAtEnd(t, r.Proc)
	return r
}

// MustStartCluster is StartCluster for the rest of the test, on a new
// data dir if o has none.
func (b *Bin) MustStartCluster(t TB, root *Root, o ClusterOptions) *Cluster {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	c, err := b.StartCluster(context.Background(), root, o)
	if err != nil {
		t.Fatalf("start thicket-cluster %s: %v", o.Name, err)
	}
	StopAtEnd(t, c.Proc)
	return c
}

// MustStartNode is StartNode for the rest of the test, on a new data dir
// if o has none.
func (b *Bin) MustStartNode(t TB, o NodeOptions) *Node {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	n, err := b.StartNode(context.Background(), o)
	if err != nil {
		t.Fatalf("start node %s: %v", o.Name, err)
	}
	if n.Net != nil {
		StopAtEnd(t, n.Net)
	}
	StopAtEnd(t, n.Engine)
	return n
}

// M is the part of testing.M that Main uses.
type M interface{ Run() int }

// Main is the heart of a TestMain: it builds the programs once for the
// test binary into a new temporary Bin, sets *bin to it, runs the tests and
// removes the programs. It returns the exit code: the tests', or 1 if the
// build failed (which it prints).
func Main(m M, bin **Bin, programs ...string) int {
	b, err := TempBin()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Remove()
	if err := b.Build(context.Background(), programs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*bin = b
	return m.Run()
}
