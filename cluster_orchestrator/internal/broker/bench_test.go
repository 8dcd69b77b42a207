package broker

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thicket-edge/thicket/contract/wire"
	"github.com/thicket-edge/thicket/internal/mqttc"
)

// anyNode accepts every username as the node of that name, and "manager".
type anyNode struct{}

func (anyNode) Authenticate(username string, _ []byte, _ *x509.Certificate) (Principal, bool) {
	if username == "manager" {
		return Principal{Manager: true}, true
	}
	return Principal{NodeID: username}, true
}

// rawNode is a node that speaks just enough MQTT 3.1.1 over a bare TCP
// connection to report at QoS 0, so that a benchmark measures the broker
// and the manager's client, not 1,000 paho clients.
type rawNode struct {
	conn   net.Conn
	w      *bufio.Writer
	report []byte // a whole PUBLISH packet
}

func mqttString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func mqttPacket(header byte, body []byte) []byte {
	out := []byte{header}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

func dialRawNode(addr, id string, payload []byte) (*rawNode, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var body []byte
	body = mqttString(body, "MQTT")
	body = append(body, 4, 0xC2, 0, 60) // level 4; username, password, clean; keepalive 60 s
	body = mqttString(body, mqttc.NodeClientID(id))
	body = mqttString(body, id)
	body = mqttString(body, "pw")
	if _, err := conn.Write(mqttPacket(0x10, body)); err != nil {
		conn.Close()
		return nil, err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		conn.Close()
		return nil, fmt.Errorf("connack %x: %v", ack, err)
	}
	go func() { _, _ = io.Copy(io.Discard, conn) }()
	pub := mqttString(nil, wire.ReportTopic(id))
	return &rawNode{conn: conn, w: bufio.NewWriter(conn), report: mqttPacket(0x30, append(pub, payload...))}, nil
}

// BenchmarkReports measures one node report (QoS 0, 1 KiB) from publish to
// the manager's handler: ACL checks, routing, the manager's mqttc client.
// The target is 2,000 nodes at one report a second on one core, i.e.
// ≤ 500 µs of CPU per report; run with -cpu 1 to see it on one core (the
// raw nodes' writes are included and cheap).
func BenchmarkReports(b *testing.B) {
	const nodes = 1000
	br, err := New(Config{Listen: "127.0.0.1:0", Auth: anyNode{}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	defer br.Close()

	var got atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mgr, err := mqttc.Connect(ctx, mqttc.Options{URL: "tcp://" + br.Addr(), Username: "manager", Password: "pw", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	if err := mgr.Subscribe(ctx, "thicket/node/+/report", 0, func(string, []byte) { got.Add(1) }); err != nil {
		b.Fatal(err)
	}
	payload := []byte(strings.Repeat("r", 1024))
	ns := make([]*rawNode, nodes)
	for i := range ns {
		if ns[i], err = dialRawNode(br.Addr(), fmt.Sprintf("bench%d", i), payload); err != nil {
			b.Fatal(err)
		}
		defer ns[i].conn.Close()
	}

	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	// Send in rounds of one report per node and wait for each round, as
	// nodes on a report interval would; a burst far above the manager's
	// queue would only measure drops.
	sent := int64(0)
	for sent < int64(b.N) {
		round := min(int64(nodes), int64(b.N)-sent)
		for i := int64(0); i < round; i++ {
			n := ns[i]
			// A broker that stops reading must fail the benchmark, not
			// hang it (make bench once hung here under load).
			_ = n.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = n.w.Write(n.report)
			if err := n.w.Flush(); err != nil {
				b.Fatalf("report %d of node %d: %v (manager received %d of %d)", sent+i, i, err, got.Load(), sent)
			}
		}
		sent += round
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() < sent {
			if time.Now().After(deadline) {
				b.Fatalf("manager received %d of %d reports", got.Load(), sent)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}
