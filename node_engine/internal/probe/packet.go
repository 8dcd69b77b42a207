package probe

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/thicket-edge/thicket/contract/wire"
)

// A probe and its answer are both packetSize bytes, so that a responder
// never sends more than it receives (no amplification):
//
//	0  "THKP"
//	4  version (1)
//	5  kind: 0 probe, 1 answer
//	6  dimensions of the coordinate (answers; 0: none yet)
//	7  reserved (0)
//	8  nonce (16 bytes, chosen by the prober)
//	24 error, adjustment, height (float64, big endian; answers)
//	48 vec (dimensions × float64; answers), then zeros
const (
	packetSize = 128
	version    = 1
	kindProbe  = 0
	kindAnswer = 1
	nonceSize  = 16
)

var magic = [4]byte{'T', 'H', 'K', 'P'}

var errPacket = errors.New("not a probe packet")

type packet struct {
	kind  byte
	nonce [nonceSize]byte
	coord *wire.Coordinate
}

func (p *packet) marshal() []byte {
	b := make([]byte, packetSize)
	copy(b, magic[:])
	b[4], b[5] = version, p.kind
	copy(b[8:24], p.nonce[:])
	if c := p.coord; c.Valid() {
		b[6] = byte(len(c.Vec))
		binary.BigEndian.PutUint64(b[24:], math.Float64bits(c.Error))
		binary.BigEndian.PutUint64(b[32:], math.Float64bits(c.Adjustment))
		binary.BigEndian.PutUint64(b[40:], math.Float64bits(c.Height))
		for i, v := range c.Vec {
			binary.BigEndian.PutUint64(b[48+8*i:], math.Float64bits(v))
		}
	}
	return b
}

func unmarshal(b []byte) (packet, error) {
	var p packet
	if len(b) != packetSize || [4]byte(b[:4]) != magic || b[4] != version || b[5] > kindAnswer || b[6] > wire.MaxCoordinateDims {
		return p, errPacket
	}
	p.kind = b[5]
	copy(p.nonce[:], b[8:24])
	if dims := int(b[6]); dims > 0 && p.kind == kindAnswer {
		c := &wire.Coordinate{
			Error:      math.Float64frombits(binary.BigEndian.Uint64(b[24:])),
			Adjustment: math.Float64frombits(binary.BigEndian.Uint64(b[32:])),
			Height:     math.Float64frombits(binary.BigEndian.Uint64(b[40:])),
			Vec:        make([]float64, dims),
		}
		for i := range c.Vec {
			c.Vec[i] = math.Float64frombits(binary.BigEndian.Uint64(b[48+8*i:]))
		}
		if !c.Valid() {
			return p, errPacket
		}
		p.coord = c
	}
	return p, nil
}
