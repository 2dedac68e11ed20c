package overlay

import (
	"encoding/binary"
	"os"
)

// The QCOW2 export: version 3, 64 KiB clusters, 16-bit refcounts, no
// backing file, no snapshots. Its layout is written in one pass:
//
//	cluster 0            header (104 bytes, then the end-of-extensions mark)
//	clusters 1..         L1 table
//	then, per 512 MiB    that range's data clusters, then its L2 table
//	then                 refcount table, then refcount blocks
//
// Every cluster is referenced once and has refcount 1 (so L1 and L2
// entries carry QCOW_OFLAG_COPIED), which is what `qemu-img check` wants.
const (
	qcowClusterBits = 16
	qcowCluster     = 1 << qcowClusterBits
	qcowL2Entries   = qcowCluster / 8
	qcowRefEntries  = qcowCluster / 2 // 16-bit refcounts
	qcowCopied      = 1 << 63
	qcowHeaderLen   = 104
)

type qcowWriter struct {
	w     *os.File
	size  int64
	l1    []uint64
	l2    []uint64
	l2At  int   // the L1 index l2 belongs to, or -1
	next  int64 // the next free cluster's offset
	l1Off int64
}

func newQcowWriter(w *os.File, size int64) *qcowWriter {
	l1Size := (size + qcowCluster*qcowL2Entries - 1) / (qcowCluster * qcowL2Entries)
	l1Clusters := (l1Size*8 + qcowCluster - 1) / qcowCluster
	return &qcowWriter{
		w: w, size: size,
		l1:    make([]uint64, l1Size),
		l2:    make([]uint64, qcowL2Entries),
		l2At:  -1,
		l1Off: qcowCluster,
		next:  (1 + l1Clusters) * qcowCluster,
	}
}

func (q *qcowWriter) cluster(off int64, p []byte) error {
	i := off / qcowCluster
	if l1i := int(i / qcowL2Entries); l1i != q.l2At {
		if err := q.flushL2(); err != nil {
			return err
		}
		q.l2At = l1i
	}
	if _, err := q.w.WriteAt(p, q.next); err != nil {
		return err
	}
	q.l2[i%qcowL2Entries] = uint64(q.next) | qcowCopied
	q.next += qcowCluster
	return nil
}

// flushL2 writes the current L2 table after the data it maps.
func (q *qcowWriter) flushL2() error {
	if q.l2At < 0 {
		return nil
	}
	if _, err := q.w.WriteAt(bigEndian(q.l2), q.next); err != nil {
		return err
	}
	q.l1[q.l2At] = uint64(q.next) | qcowCopied
	q.next += qcowCluster
	clear(q.l2)
	q.l2At = -1
	return nil
}

func (q *qcowWriter) finish() error {
	if err := q.flushL2(); err != nil {
		return err
	}
	// The refcount structures count themselves: grow them until they
	// cover every cluster, their own included.
	used := q.next / qcowCluster
	var blocks, tableClusters int64
	for {
		total := used + blocks + tableClusters
		nb := (total + qcowRefEntries - 1) / qcowRefEntries
		nt := (nb*8 + qcowCluster - 1) / qcowCluster
		if nb == blocks && nt == tableClusters {
			break
		}
		blocks, tableClusters = nb, nt
	}
	total := used + blocks + tableClusters
	tableOff := q.next
	blocksOff := tableOff + tableClusters*qcowCluster
	table := make([]uint64, tableClusters*qcowCluster/8)
	block := make([]byte, qcowCluster)
	for b := range blocks {
		table[b] = uint64(blocksOff + b*qcowCluster)
		clear(block)
		for c := b * qcowRefEntries; c < min(total, (b+1)*qcowRefEntries); c++ {
			binary.BigEndian.PutUint16(block[(c-b*qcowRefEntries)*2:], 1)
		}
		if _, err := q.w.WriteAt(block, blocksOff+b*qcowCluster); err != nil {
			return err
		}
	}
	if _, err := q.w.WriteAt(bigEndian(table), tableOff); err != nil {
		return err
	}
	if len(q.l1) > 0 {
		if _, err := q.w.WriteAt(bigEndian(q.l1), q.l1Off); err != nil {
			return err
		}
	}
	h := make([]byte, qcowHeaderLen+8) // the header, then an empty extension: the end mark
	copy(h, "QFI\xfb")
	binary.BigEndian.PutUint32(h[4:], 3)
	binary.BigEndian.PutUint32(h[20:], qcowClusterBits)
	// qemu reads a QCOW2's size in 512-byte sectors, rounding down: the
	// header says the size rounded up, and the padding reads as zeros.
	binary.BigEndian.PutUint64(h[24:], uint64((q.size+511)/512*512))
	binary.BigEndian.PutUint32(h[36:], uint32(len(q.l1)))
	binary.BigEndian.PutUint64(h[40:], uint64(q.l1Off))
	binary.BigEndian.PutUint64(h[48:], uint64(tableOff))
	binary.BigEndian.PutUint32(h[56:], uint32(tableClusters))
	binary.BigEndian.PutUint32(h[96:], 4) // refcount_order: 16-bit
	binary.BigEndian.PutUint32(h[100:], qcowHeaderLen)
	_, err := q.w.WriteAt(h, 0)
	return err
}

func bigEndian(v []uint64) []byte {
	b := make([]byte, 0, len(v)*8)
	for _, x := range v {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b
}
