package mqtt

import (
	"crypto/rand"
	"fmt"
	"time"
)

// eventIDs makes event ids that sort in creation order: 26 characters of
// Crockford base32 over a 48-bit millisecond timestamp and 80 bits that are
// random at each new millisecond and incremented within one (the ULID layout).
// Not safe for concurrent use: the publisher calls it under its lock, so ids
// also follow outbox order.
type eventIDs struct {
	lastMs uint64
	tail   [10]byte
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func (g *eventIDs) next(now time.Time) (string, error) {
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMs {
		// Same millisecond or the clock stepped back: keep the order by counting up.
		for i := len(g.tail) - 1; i >= 0; i-- {
			g.tail[i]++
			if g.tail[i] != 0 {
				break
			}
			if i == 0 {
				g.lastMs++ // 2^80 ids in one millisecond: borrow the next one
			}
		}
	} else {
		g.lastMs = ms
		if _, err := rand.Read(g.tail[:]); err != nil {
			return "", fmt.Errorf("event id: %w", err)
		}
		g.tail[0] &= 0x7f // leave room to count up within the millisecond
	}
	var raw [16]byte
	for i := 0; i < 6; i++ {
		raw[i] = byte(g.lastMs >> (40 - 8*i))
	}
	copy(raw[6:], g.tail[:])
	return encodeCrockford(raw), nil
}

// encodeCrockford writes 128 bits as 26 base32 digits, most significant first
// (the first digit carries the top 3 bits).
func encodeCrockford(raw [16]byte) string {
	var out [26]byte
	// Treat raw as a 130-bit number with two leading zero bits.
	bit := func(i int) byte { // i-th bit of the 130-bit number, 0 = most significant
		i -= 2
		if i < 0 {
			return 0
		}
		return (raw[i/8] >> (7 - uint(i%8))) & 1
	}
	for d := 0; d < 26; d++ {
		var v byte
		for b := 0; b < 5; b++ {
			v = v<<1 | bit(d*5+b)
		}
		out[d] = crockford[v]
	}
	return string(out[:])
}
