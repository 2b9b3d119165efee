package statestore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchClick is what attribution stage A keeps per click: enough to decide
// (time, app, placement) and to cost the install (cost, currency).
type benchClick struct {
	time                               time.Time
	id                                 uuid.UUID // ingest mints UUIDv7 click ids
	app, source, campaign, site, cr, c string
	cost                               int64 // money.Amount micro-units
}

// encodeClick is a compact click entry: varint fields and length-prefixed
// strings, no field names. The id is not repeated (it is in the key).
func encodeClick(dst []byte, c *benchClick) []byte {
	dst = binary.AppendVarint(dst, c.time.UnixNano())
	for _, s := range []string{c.app, c.source, c.campaign, c.site, c.cr, c.c} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return binary.AppendVarint(dst, c.cost)
}

// clickGen produces a realistic stream: time moving forward ~1 ms per
// click, UUIDv7 ids carrying that time, a few hundred campaigns over 50 apps.
type clickGen struct {
	rnd *rand.Rand
	now time.Time
}

func newClickGen() *clickGen {
	return &clickGen{rnd: rand.New(rand.NewPCG(1, 2)), now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

func (g *clickGen) next() benchClick {
	g.now = g.now.Add(time.Duration(g.rnd.IntN(2_000_000)))
	var id uuid.UUID
	ms := uint64(g.now.UnixMilli())
	binary.BigEndian.PutUint64(id[:8], ms<<16|uint64(g.rnd.Uint32()&0x0fff)|0x7000)
	binary.BigEndian.PutUint64(id[8:], g.rnd.Uint64()&^(3<<62)|(2<<62))
	app := g.rnd.IntN(50)
	return benchClick{
		time:     g.now,
		id:       id,
		app:      fmt.Sprintf("com.studio%02d.game", app),
		source:   fmt.Sprintf("network%d", g.rnd.IntN(8)),
		campaign: fmt.Sprintf("cmp-%05d", app*10+g.rnd.IntN(10)),
		site:     fmt.Sprintf("site-%06d", g.rnd.IntN(20000)),
		cr:       fmt.Sprintf("cr-%04d", g.rnd.IntN(2000)),
		c:        "USD",
		cost:     int64(g.rnd.IntN(500_000)),
	}
}

// storeClick writes a click as stage A would: the entry by click id, and
// an expiry index entry (time first) whose value names the entry. With
// textID the id is kept as the 36-character string the MMP passes back
// rather than its 16 bytes.
func storeClick(b *Batch, c *benchClick, buf []byte, textID bool) []byte {
	id := string(c.id[:])
	if textID {
		id = c.id.String()
	}
	primary := append([]byte{'c'}, id...)
	buf = encodeClick(buf[:0], c)
	b.Set(primary, buf)
	b.Set(TimeKey([]byte{'x'}, c.time, id), primary)
	return buf
}

// BenchmarkStoreClick measures what a stored click costs: bytes on disk per
// click once 100k clicks are flushed and compacted (sstables only; the WAL
// is transient), and the time of one transaction's batch of 100 clicks.
func BenchmarkStoreClick(b *testing.B) {
	b.Run("disk-100k/id=uuid16", func(b *testing.B) { benchDisk(b, false) })
	b.Run("disk-100k/id=text36", func(b *testing.B) { benchDisk(b, true) })
	b.Run("batch-100", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{CacheSize: 8 << 20})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		g := newClickGen()
		var buf []byte
		off := int64(0)
		for b.Loop() {
			bt := s.NewBatch()
			for j := 0; j < 100; j++ {
				c := g.next()
				buf = storeClick(bt, &c, buf, false)
			}
			off += 200
			bt.SetChangelogOffset(off)
			if err := bt.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/click")
	})
}

// benchDisk writes 100k clicks in 100-click batches to a fresh store,
// flushes and compacts it, and reports sstable bytes per click (both the
// entry and its expiry index entry) and the encoded entry size.
func benchDisk(b *testing.B, textID bool) {
	const n = 100_000
	for b.Loop() {
		s, err := Open(b.TempDir(), Options{CacheSize: 8 << 20})
		if err != nil {
			b.Fatal(err)
		}
		g := newClickGen()
		var buf []byte
		for i := 0; i < n; i += 100 {
			bt := s.NewBatch()
			for j := 0; j < 100; j++ {
				c := g.next()
				buf = storeClick(bt, &c, buf, textID)
			}
			if err := bt.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := s.db.Compact([]byte{0x00}, []byte{0xff}, false); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(s.db.Metrics().Total().Size)/n, "bytes/click")
		b.ReportMetric(float64(len(buf)), "entry-bytes")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
