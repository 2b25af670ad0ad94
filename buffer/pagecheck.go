package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// checkPages walks the bbolt file's page tree the way bbolt's own
// consistency check does (every page referenced once, within the high water
// mark, of the right type; keys in order within a page and within the range
// their parent gives them), but reading through r instead of bbolt's mmap and
// returning the first fault as an error.
//
// It runs before bbolt is allowed to touch the tree. bbolt's check runs in a
// goroutine of its own where a memory fault cannot be caught, recurses
// without a depth bound (a page that references its own ancestor overflows
// the stack, which no recover catches), and the read-write open rebuilds the
// freelist with the same walk and panics on what it finds. After this walk
// the tree bbolt sees is finite and in bounds.
//
// The work is bounded by the file: every page is read at most once, inline
// buckets are nested at most maxTreeDepth deep, and a branch or leaf has at
// most the elements its page can hold.
func checkPages(r io.ReaderAt, fileSize int64) error {
	w, err := newPageWalker(r, fileSize)
	if err != nil {
		return err
	}
	if w.freelist != noFreelist {
		if err := w.markFreelist(); err != nil {
			return err
		}
	}
	b, err := w.anyPage(w.root)
	if err != nil {
		return fmt.Errorf("root bucket: %w", err)
	}
	return w.node(w.root, b, nil, nil, 0)
}

// bbolt's on-disk layout (go.etcd.io/bbolt internal/common), in the
// machine's byte order as bbolt writes it.
const (
	pgBranch   = 0x01
	pgLeaf     = 0x02
	pgMeta     = 0x04
	pgFreelist = 0x10

	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaSize       = 64 // magic, version, page size, flags, root (16), freelist, pgid, txid, checksum
	metaSumOffset  = 56
	elemSize       = 16 // branch: pos, ksize, pgid; leaf: flags, pos, ksize, vsize
	bucketHdrSize  = 16 // root pgid, sequence
	bucketLeafFlag = 0x01

	noFreelist = ^uint64(0)
	// maxTreeDepth bounds the nesting of pages and buckets: a linegate
	// buffer is a handful of levels deep even at 1 GiB.
	maxTreeDepth = 64
	// minPageSize and maxPageSize bound the page size a meta page may claim.
	minPageSize = 512
	maxPageSize = 1 << 16
)

var ne = binary.NativeEndian

type pageWalker struct {
	r        io.ReaderAt
	pageSize int64
	hwm      uint64 // pages below it are in use or free
	root     uint64 // root bucket's page
	freelist uint64
	seen     []bool // page referenced (tree, freelist or meta)
	freed    []bool
}

type boltMeta struct {
	pageSize           uint32
	root, freelist, pg uint64
	txid               uint64
}

func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("short meta page")
	}
	flags := ne.Uint16(b[8:])
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if flags&pgMeta == 0 {
		return boltMeta{}, fmt.Errorf("not a meta page (flags %#x)", flags)
	}
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("not a bbolt file (magic)")
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	if h.Sum64() != ne.Uint64(m[metaSumOffset:]) {
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	return boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pg:       ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

func newPageWalker(r io.ReaderAt, fileSize int64) (*pageWalker, error) {
	head := make([]byte, pageHeaderSize+metaSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read meta page 0: %w", err)
	}
	m0, err0 := parseMeta(head)
	// The second meta page is one page further; its size comes from the
	// first, or, when that is damaged, from whichever size finds a valid one.
	sizes := []int64{int64(m0.pageSize)}
	if err0 != nil {
		sizes = sizes[:0]
		for s := int64(minPageSize); s <= maxPageSize; s *= 2 {
			sizes = append(sizes, s)
		}
	}
	var m1 boltMeta
	err1 := errors.New("no second meta page")
	for _, s := range sizes {
		if s < minPageSize || s > maxPageSize || s+int64(len(head)) > fileSize {
			continue
		}
		if _, err := r.ReadAt(head, s); err != nil {
			continue
		}
		if m1, err1 = parseMeta(head); err1 == nil && m1.pageSize == uint32(s) {
			break
		}
		if err1 == nil {
			err1 = fmt.Errorf("meta page 1 says page size %d, found at %d", m1.pageSize, s)
		}
	}
	// bbolt uses the valid meta with the higher txid.
	m := m0
	switch {
	case err0 != nil && err1 != nil:
		return nil, fmt.Errorf("meta pages: %v; %v", err0, err1)
	case err0 != nil, err1 == nil && m1.txid > m0.txid:
		m = m1
	}
	ps := int64(m.pageSize)
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("meta: page size %d", ps)
	}
	if m.pg < 2 || m.pg > uint64(fileSize/ps) {
		return nil, fmt.Errorf("truncated: the meta page counts %d pages of %d bytes, the file has %d bytes", m.pg, ps, fileSize)
	}
	if m.root < 2 || m.root >= m.pg {
		return nil, fmt.Errorf("meta: root page %d out of bounds [2, %d)", m.root, m.pg)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pg) {
		return nil, fmt.Errorf("meta: freelist page %d out of bounds [2, %d)", m.freelist, m.pg)
	}
	w := &pageWalker{r: r, pageSize: ps, hwm: m.pg, root: m.root, freelist: m.freelist,
		seen: make([]bool, m.pg), freed: make([]bool, m.pg)}
	w.seen[0], w.seen[1] = true, true
	return w, nil
}

// anyPage reads a branch or leaf page.
func (w *pageWalker) anyPage(id uint64) ([]byte, error) { return w.page(id, pgBranch|pgLeaf) }

// page reads page id with its overflow pages and marks them referenced;
// its type must be one of the bits in want.
func (w *pageWalker) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d: out of bounds [2, %d)", id, w.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.r.ReadAt(hdr, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: read: %w", id, err)
	}
	if got := ne.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d: header says page %d", id, got)
	}
	if f := ne.Uint16(hdr[8:]); f&want == 0 || f&^want != 0 || f&(f-1) != 0 {
		return nil, fmt.Errorf("page %d: type %#x, want %#x", id, f, want)
	}
	over := uint64(ne.Uint32(hdr[12:]))
	if over >= w.hwm-id {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high water mark %d", id, over, w.hwm)
	}
	for p := id; p <= id+over; p++ {
		if w.seen[p] {
			return nil, fmt.Errorf("page %d: referenced twice", p)
		}
		if w.freed[p] {
			return nil, fmt.Errorf("page %d: in use and free", p)
		}
		w.seen[p] = true
	}
	b := make([]byte, int64(over+1)*w.pageSize)
	if _, err := w.r.ReadAt(b, int64(id)*w.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: read %d bytes: %w", id, len(b), err)
	}
	return b, nil
}

func (w *pageWalker) markFreelist() error {
	b, err := w.page(w.freelist, pgFreelist)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	n, off := uint64(ne.Uint16(b[10:])), uint64(pageHeaderSize)
	if n == 0xFFFF { // the real count is the first element
		if len(b) < pageHeaderSize+8 {
			return fmt.Errorf("freelist page %d: short", w.freelist)
		}
		n, off = ne.Uint64(b[pageHeaderSize:]), off+8
	}
	if n > (uint64(len(b))-off)/8 {
		return fmt.Errorf("freelist page %d: %d ids do not fit", w.freelist, n)
	}
	for i := range n {
		id := ne.Uint64(b[off+8*i:])
		if id < 2 || id >= w.hwm {
			return fmt.Errorf("freelist: page %d out of bounds [2, %d)", id, w.hwm)
		}
		if w.freed[id] || w.seen[id] {
			return fmt.Errorf("freelist: page %d freed twice or in use", id)
		}
		w.freed[id] = true
	}
	return nil
}

// node checks one branch or leaf page (b, its bytes) whose keys must lie in
// [lo, hi) (nil: unbounded), and descends.
func (w *pageWalker) node(id uint64, b []byte, lo, hi []byte, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	flags, count := ne.Uint16(b[8:]), int(ne.Uint16(b[10:]))
	if count > (len(b)-pageHeaderSize)/elemSize {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	elem := func(i int) []byte { return b[pageHeaderSize+i*elemSize : pageHeaderSize+(i+1)*elemSize] }
	// slice returns n bytes at pos, counted from element i's start.
	slice := func(i int, pos, n uint32) ([]byte, error) {
		start := uint64(pageHeaderSize+i*elemSize) + uint64(pos)
		if end := start + uint64(n); end <= uint64(len(b)) {
			return b[start:end], nil
		}
		return nil, fmt.Errorf("page %d: element %d points past the page", id, i)
	}
	var prev []byte
	inRange := func(i int, k []byte) error {
		switch {
		case prev != nil && bytes.Compare(prev, k) >= 0:
			return fmt.Errorf("page %d: key %d (%x) not above the previous one (%x)", id, i, k, prev)
		case prev == nil && lo != nil && bytes.Compare(k, lo) < 0:
			return fmt.Errorf("page %d: first key %x below its parent's %x", id, k, lo)
		case hi != nil && bytes.Compare(k, hi) >= 0:
			return fmt.Errorf("page %d: key %d (%x) not below the next parent key %x", id, i, k, hi)
		}
		prev = k
		return nil
	}
	switch flags {
	case pgBranch:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch", id)
		}
		keys := make([][]byte, count)
		for i := range count {
			e := elem(i)
			k, err := slice(i, ne.Uint32(e[0:]), ne.Uint32(e[4:]))
			if err != nil {
				return err
			}
			if err := inRange(i, k); err != nil {
				return err
			}
			keys[i] = k
		}
		for i := range count {
			upper := hi
			if i+1 < count {
				upper = keys[i+1]
			}
			child := ne.Uint64(elem(i)[8:])
			cb, err := w.anyPage(child)
			if err != nil {
				return err
			}
			if err := w.node(child, cb, keys[i], upper, depth+1); err != nil {
				return err
			}
		}
		return nil
	case pgLeaf:
		for i := range count {
			e := elem(i)
			ksz, vsz := ne.Uint32(e[8:]), ne.Uint32(e[12:])
			kv, err := slice(i, ne.Uint32(e[4:]), ksz+vsz)
			if ksz+vsz < ksz {
				err = fmt.Errorf("page %d: element %d sizes overflow", id, i)
			}
			if err != nil {
				return err
			}
			k, v := kv[:ksz], kv[ksz:]
			if err := inRange(i, k); err != nil {
				return err
			}
			if ne.Uint32(e[0:])&bucketLeafFlag == 0 {
				continue
			}
			if len(v) < bucketHdrSize {
				return fmt.Errorf("page %d: bucket %x: header of %d bytes", id, k, len(v))
			}
			if root := ne.Uint64(v[0:]); root != 0 {
				cb, err := w.anyPage(root)
				if err != nil {
					return fmt.Errorf("bucket %x: %w", k, err)
				}
				if err := w.node(root, cb, nil, nil, depth+1); err != nil {
					return fmt.Errorf("bucket %x: %w", k, err)
				}
				continue
			}
			// An inline bucket: its leaf page follows the header.
			in := v[bucketHdrSize:]
			if len(in) < pageHeaderSize {
				return fmt.Errorf("page %d: inline bucket %x: %d bytes", id, k, len(in))
			}
			if f := ne.Uint16(in[8:]); f != pgLeaf {
				return fmt.Errorf("page %d: inline bucket %x: page type %#x", id, k, f)
			}
			if err := w.node(id, in, nil, nil, depth+1); err != nil {
				return fmt.Errorf("inline bucket %x: %w", k, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("page %d: type %#x, want a branch or a leaf", id, flags)
	}
}
