package testharness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Delay holds a host's outgoing UDP packets to or from one port for a
// while before the kernel sends them: a link delay for those packets.
//
// tc netem is the usual tool, but the kernels this runs on may lack it
// (CONFIG_NET_SCH_NETEM); netfilter's queue (NFQUEUE, an xtables rule in
// the host's namespace) is there: each packet waits in the kernel until
// this process gives its verdict, after the delay. Only the matched packets
// wait, so the rest of the host's traffic is untouched.
type Delay struct {
	netns string
	queue uint16
	rule  []string
	conn  *netlink.Conn
	delay atomic.Int64
	wg    sync.WaitGroup
	// Packets counts the packets delayed.
	Packets atomic.Uint64
}

// netfilter queue protocol (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue    = 3
	nfqnlMsgPacket     = 0
	nfqnlMsgVerdict    = 1
	nfqnlMsgConfig     = 2
	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaPacketHdr      = 1
	nfqaVerdictHdr     = 2
	nfqnlCfgCmdBind    = 1
	nfqnlCopyMeta      = 1
	nfAccept           = 1
	nfnetlinkV0        = 0
	afInet             = 2
	nfqnlCfgCmdPFUnbnd = 4
)

// StartDelay delays the UDP packets the host (network namespace netns)
// sends from or to port by d, through netfilter queue number queue (unique
// per host while it runs).
func StartDelay(netns string, queue uint16, port int, d time.Duration) (*Delay, error) {
	dl := &Delay{netns: netns, queue: queue,
		rule: []string{"OUTPUT", "-p", "udp", "-m", "multiport", "--ports", strconv.Itoa(port),
			"-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(queue)), "--queue-bypass"}}
	dl.delay.Store(int64(d))
	conn, err := dialIn(netns)
	if err != nil {
		return nil, fmt.Errorf("delay on %s: %w", netns, err)
	}
	dl.conn = conn
	if err := dl.config(0, []netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdPFUnbnd, 0, 0, afInet}}}); err != nil {
		// Unbinding the family is obsolete (a no-op since Linux 3.8); an
		// error here is not one.
		_ = err
	}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0xffff)
	params[4] = nfqnlCopyMeta
	if err := dl.config(queue, []netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdBind, 0, 0, afInet}}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("delay on %s: bind queue %d: %w", netns, queue, err)
	}
	if err := dl.config(queue, []netlink.Attribute{{Type: nfqaCfgParams, Data: params}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("delay on %s: queue %d parameters: %w", netns, queue, err)
	}
	if out, err := exec.Command("ip", append([]string{"netns", "exec", netns, "iptables-legacy", "-t", "mangle", "-A"}, dl.rule...)...).CombinedOutput(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("delay on %s: iptables: %w: %s", netns, err, strings.TrimSpace(string(out)))
	}
	dl.wg.Add(1)
	go dl.serve()
	return dl, nil
}

// Set changes the delay (packets already waiting keep theirs).
func (dl *Delay) Set(d time.Duration) { dl.delay.Store(int64(d)) }

// Close removes the rule and stops delaying.
func (dl *Delay) Close() {
	_ = exec.Command("ip", append([]string{"netns", "exec", dl.netns, "iptables-legacy", "-t", "mangle", "-D"}, dl.rule...)...).Run()
	dl.conn.Close()
	dl.wg.Wait()
}

// dialIn opens a netfilter netlink socket in the named network namespace.
func dialIn(netns string) (conn *netlink.Conn, err error) {
	err = InNetns(netns, func() (err error) {
		conn, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
		return err
	})
	return conn, err
}

// InNetns runs fn on a thread in the named network namespace (under
// /run/netns): sockets it opens stay in that namespace.
func InNetns(netns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + netns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		panic("testharness: cannot return to this thread's network namespace: " + err.Error())
	}
	return ferr
}

// nfgen is the nfgenmsg header for queue q.
func nfgen(q uint16) []byte {
	b := []byte{0, nfnetlinkV0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], q)
	return b
}

func (dl *Delay) config(q uint16, attrs []netlink.Attribute) error {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	_, err = dl.conn.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | nfqnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(nfgen(q), data...),
	})
	return err
}

// serve receives queued packets and accepts each after the delay.
func (dl *Delay) serve() {
	defer dl.wg.Done()
	var sendMu sync.Mutex
	for {
		msgs, err := dl.conn.Receive()
		if err != nil {
			if errors.Is(err, os.ErrClosed) || strings.Contains(err.Error(), "closed") {
				return
			}
			continue // e.g. ENOBUFS under load: the queue bypass lets packets through
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
				continue
			}
			ad, err := netlink.NewAttributeDecoder(m.Data[4:])
			if err != nil {
				continue
			}
			var id uint32
			for ad.Next() {
				if ad.Type() == nfqaPacketHdr && len(ad.Bytes()) >= 4 {
					id = binary.BigEndian.Uint32(ad.Bytes())
				}
			}
			dl.Packets.Add(1)
			verdict := make([]byte, 8)
			binary.BigEndian.PutUint32(verdict, nfAccept)
			binary.BigEndian.PutUint32(verdict[4:], id)
			data, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: nfqaVerdictHdr, Data: verdict}})
			msg := netlink.Message{
				Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | nfqnlMsgVerdict), Flags: netlink.Request},
				Data:   append(nfgen(dl.queue), data...),
			}
			time.AfterFunc(time.Duration(dl.delay.Load()), func() {
				sendMu.Lock()
				defer sendMu.Unlock()
				_, _ = dl.conn.Send(msg)
			})
		}
	}
}
