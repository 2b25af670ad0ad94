package uplink

import "strings"

// Reuse of data payload buffers. At the design load (~300 messages a second
// of ~33 readings) a fresh ~6 KiB buffer per message was the uplink's
// largest allocation, so the buffer of a message goes back to a free list
// once paho is done with it, and the next message is encoded into it.
//
// When paho (v1.5.1) is done with a payload: Publish keeps the slice itself
// (PublishPacket.Payload, no copy) and reads it in two places only:
//
//   - the writer goroutine (net.go startOutgoingComms), whose msg.Write
//     copies it into the packet it writes to the connection;
//   - the store: for QoS 1, Publish calls persistOutbound, which keeps the
//     packet under "o.<id>" so that resume() can resend it on a reconnect of
//     the same client.
//
// A buffer is reused only when its token completed without an error:
//
//   - QoS 1: a nil error means the PUBACK arrived. startIncomingComms first
//     deletes "o.<id>" from the store (persistInbound), then completes the
//     token (getToken(id).flowComplete()); and a broker acknowledges only
//     a packet it received, which the writer had copied before writing.
//   - QoS 0: the writer completes the token after msg.Write returned, and
//     QoS 0 packets are never stored.
//
// paho completes a publish token without error in other cases only under
// options that connect never sets: with CleanSession(false) or ConnectRetry,
// resume() and reserveStoredPublishIDs call claimID, which completes the old
// token without error while its packet stays in the store to be resent; with
// AutoReconnect, a lost connection keeps the packets in the store for that
// resume. connect sets CleanSession(true), AutoReconnect(false) and
// ConnectRetry(false) and makes a new client per connection, so nothing is
// ever resent from a store (the at-least-once rule of the acker relies on
// the same options).
//
// A token that completed with an error (connection lost, write failed or
// timed out) may leave its packet queued for the writer or in the store, so
// that buffer is left to the garbage collector.
//
// TestReusedPayloadsAreIntact checks the bytes the broker gets; on a paho
// upgrade, check the paths above again.

// maxPooledPayload bounds the buffers kept: one message with thousands of
// readings must not pin its buffer for the life of the process.
const maxPooledPayload = 64 << 10

// maxFreePayloads bounds the free list; at most MaxInflight buffers are out
// at a time anyway.
const maxFreePayloads = 64

// payloadPool is a free list of payload buffers, filled by the acker and
// drained by the goroutine that publishes.
type payloadPool struct {
	free chan []byte
}

func newPayloadPool(window int) payloadPool {
	return payloadPool{free: make(chan []byte, min(window, maxFreePayloads))}
}

// get returns an empty buffer with room for size bytes, reused if one is
// free.
func (p payloadPool) get(size int) []byte {
	select {
	case b := <-p.free:
		if cap(b) >= size {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, size)
}

// put gives back a buffer that paho no longer reads (see above).
func (p payloadPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledPayload {
		return
	}
	select {
	case p.free <- b:
	default:
	}
}

// topicKey is what a data topic depends on besides the configuration.
type topicKey struct{ equipment, class string }

// maxTopics bounds the topic cache; past it the cache starts over.
const maxTopics = 4096

// dataTopic is Topic for m's equipment and class, cached: a message's topic
// is the same every cycle, and building it cost an allocation per message.
// Only the goroutine that publishes (Run's) uses the cache.
func (u *Uplink) dataTopic(equipment, class string) string {
	k := topicKey{equipment, class}
	if t, ok := u.topics[k]; ok {
		return t
	}
	if len(u.topics) >= maxTopics {
		clear(u.topics)
	}
	t := Topic(u.cfg.TopicPrefix, u.gw.Site, u.gw.Area, u.gw.Line, equipment, class)
	// Cloned: the strings of a message may share memory with much more
	// (the buffer decodes a record's text in one piece).
	u.topics[topicKey{strings.Clone(equipment), strings.Clone(class)}] = t
	return t
}
