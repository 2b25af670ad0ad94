package uplink

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/linegate/linegate/buffer"
)

// DefaultMaxMessageSize is the default of Config.MaxMessageSize and of
// SplitConfig.MaxMessageSize: below the limits brokers ship with or that
// clouds impose (Azure IoT Hub 256 KiB, NATS 1 MiB), far above a cycle of a
// few hundred tags (about 100 bytes a reading).
const DefaultMaxMessageSize = 256 << 10

// MaxMessageSizeLimit is the largest packet MQTT can carry (its remaining
// length is at most 268,435,455 bytes) plus the fixed header.
const MaxMessageSizeLimit = 268435455 + 5

// EventReadingTooLarge reports a reading that alone would make a message
// bigger than uplink.max_message_size: it was dropped, never buffered.
const EventReadingTooLarge = "reading_too_large"

// publishOverhead is what an MQTT 3.1.1 PUBLISH adds to its topic and
// payload at most: the fixed header (1 byte and a remaining length of up to
// 4), the topic's length (2) and the packet id (2, QoS 1).
const publishOverhead = 1 + 4 + 2 + 2

// PacketSize is the size of the PUBLISH packet that carries payload to topic
// at QoS 1, as a broker's max_packet_size counts it (an upper bound by at
// most 3 bytes of remaining length).
func PacketSize(topic string, payload int) int {
	return publishOverhead + len(topic) + payload
}

// Appender is where a Splitter puts what it is given: the buffer.
type Appender interface {
	Append(buffer.Message) (uint64, error)
	AppendEvent(buffer.Event) error
}

// SplitConfig configures a Splitter; it must match the uplink's Config.
type SplitConfig struct {
	// MaxMessageSize bounds every data PUBLISH packet, topic and header
	// included (default DefaultMaxMessageSize).
	MaxMessageSize int
	TopicPrefix    string // default "linegate"
	Gateway        Gateway
	Logger         *slog.Logger // nil = discard
}

// Splitter sits between the collector and the buffer and splits a cycle's
// message into as many messages as it takes for none to encode bigger than
// MaxMessageSize. It splits before the buffer numbers the messages: a
// message over a broker's packet limit would otherwise be resent for ever
// (the broker disconnects) or lost after its PUBACK (the broker drops it),
// and once numbered it can no longer be split without a gap in seq.
//
// A reading that alone would exceed the limit (an OPC UA array or string of
// megabytes) cannot be sent at all: it is dropped, with a reading_too_large
// event that names the device and the tag, so the loss is announced.
//
// The size is the JSON encoding's (AppendJSON) with the largest seq: what
// the uplink publishes, whatever seq the buffer assigns. Sparkplug B's DDATA
// of the same readings is smaller (metrics carry aliases, not names).
// Safe for concurrent use: every device goroutine appends through it.
type Splitter struct {
	next    Appender
	max     int
	prefix  string
	gw      Gateway
	log     *slog.Logger
	scratch sync.Pool // *[]byte for encoding
	warned  sync.Map  // device\x00tag → struct{}: warned once per run
	topics  sync.Map  // topicKey → length of the data topic
}

// NewSplitter returns a Splitter that appends to next.
func NewSplitter(next Appender, cfg SplitConfig) (*Splitter, error) {
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxMessageSize < minMaxMessageSize || cfg.MaxMessageSize > MaxMessageSizeLimit {
		return nil, fmt.Errorf("uplink: max message size %d: want %d..%d bytes", cfg.MaxMessageSize, minMaxMessageSize, MaxMessageSizeLimit)
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "linegate"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Splitter{next: next, max: cfg.MaxMessageSize, prefix: cfg.TopicPrefix, gw: cfg.Gateway, log: cfg.Logger}, nil
}

// minMaxMessageSize leaves room for a message with one ordinary reading, and
// for the status and events (a few hundred bytes).
const minMaxMessageSize = 1024

// Append appends m, split if it is too big, and returns the seq of the last
// message appended. Readings keep their order; every part has m's time,
// equipment and class.
func (s *Splitter) Append(m buffer.Message) (uint64, error) {
	bp, _ := s.scratch.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.scratch.Put(bp)

	probe := m
	probe.Seq = math.MaxUint64 // the longest id and seq
	whole := m.Readings
	probe.Readings = nil
	*bp = AppendJSON((*bp)[:0], probe, s.gw, false) // "false" is longer than "true"
	base := publishOverhead + s.topicLen(m.Equipment, m.Class) + len(*bp)
	// Fast path: the whole message fits.
	size := base
	for i := range whole {
		*bp = appendReading((*bp)[:0], &whole[i])
		size += len(*bp) + 1 // the comma
		if size > s.max {
			break
		}
	}
	if size <= s.max {
		return s.next.Append(m)
	}

	var (
		last  uint64
		first = 0 // start of the part being gathered
		part  = base
		err   error
	)
	flush := func(rs []buffer.Reading) {
		if len(rs) == 0 || err != nil {
			return
		}
		p := m
		p.Readings = rs
		var seq uint64
		if seq, err = s.next.Append(p); err == nil {
			last = seq
		}
	}
	for i := range whole {
		*bp = appendReading((*bp)[:0], &whole[i])
		n := len(*bp) + 1
		if base+n > s.max {
			// Alone too big: everything gathered before goes out first,
			// then the loss is announced.
			flush(whole[first:i])
			s.tooLarge(m, &whole[i], base+n)
			first, part = i+1, base
			continue
		}
		if part+n > s.max {
			flush(whole[first:i])
			first, part = i, base
		}
		part += n
	}
	flush(whole[first:])
	return last, err
}

// topicLen is the length of the data topic, cached: building the topic
// costs an allocation, and a device's topics are the same every cycle.
func (s *Splitter) topicLen(equipment, class string) int {
	k := topicKey{equipment, class}
	if n, ok := s.topics.Load(k); ok {
		return n.(int)
	}
	n := len(Topic(s.prefix, s.gw.Site, s.gw.Area, s.gw.Line, equipment, class))
	s.topics.Store(topicKey{strings.Clone(equipment), strings.Clone(class)}, n)
	return n
}

// AppendEvent passes e on.
func (s *Splitter) AppendEvent(e buffer.Event) error { return s.next.AppendEvent(e) }

// tooLarge drops r with an event; the first drop of a tag is also logged.
func (s *Splitter) tooLarge(m buffer.Message, r *buffer.Reading, size int) {
	if _, seen := s.warned.LoadOrStore(m.Equipment+"\x00"+r.Tag, struct{}{}); !seen {
		s.log.Warn("reading dropped: too large for uplink.max_message_size", "device", m.Equipment, "tag", r.Tag,
			"bytes", size, "max_message_size", s.max)
	}
	e := buffer.Event{Type: EventReadingTooLarge, TS: m.Created, Attrs: []buffer.Attr{
		{Key: "device", Value: m.Equipment},
		{Key: "tag", Value: r.Tag},
		{Key: "class", Value: m.Class},
		// As text: the buffer stores event attributes of JSON's types only.
		{Key: "reading_ts", Value: r.TS.UTC().Format(timeLayout)},
		{Key: "bytes", Value: uint64(size)},
		{Key: "max_message_size", Value: uint64(s.max)},
	}}
	if err := s.next.AppendEvent(e); err != nil {
		s.log.Error("reading_too_large event not stored", "device", m.Equipment, "tag", r.Tag, "error", err)
	}
}
