package modbus

import "time"

// setBackoff shortens the device's backoff and its link's dial backoff.
func (d *Driver) setBackoff(lo, hi time.Duration) {
	d.minBackoff, d.maxBackoff = lo, hi
	d.nextTry = time.Time{}
	switch l := d.l.(type) {
	case *tcpLink:
		l.dial.set(lo, hi)
	case *serialLink:
		l.dial.set(lo, hi)
	}
}
