// Package sim simulates a press line: a Modbus TCP server (on
// github.com/simonvetter/modbus) that answers for one or more presses, one
// per unit id, with values that move like a real machine's. It backs
// `linegate demo` and the tests; mbpoll and any other client can read it.
//
// Register map of every unit (0-based protocol addresses; Map holds the
// same table for code):
//
//	table     addr   type     order  name           meaning
//	holding   0-1    float32  ABCD   temperature    oil temperature, degC, 60..80, smooth
//	input     4      int16           speed          flywheel speed, rpm x10 (scale 0.1)
//	holding   10     uint16          state          0 stopped, 1 running, 2 idle, 3 fault
//	holding   12-13  uint32   ABCD   good_parts     good parts, rises while running
//	holding   14     uint16          cycle_time     last cycle time, ms, ~4000..6000
//	discrete  3      bool            door_open      guard door open (while stopped)
//	coil      0      bool            lamp           stack lamp output; written by clients only
//	holding   20-21  float32  ABCD   pressure_abcd  hydraulic pressure, bar, 123.25 + drift
//	holding   22-23  float32  CDAB   pressure_cdab  the same value, word swapped
//	holding   24-25  float32  BADC   pressure_badc  the same value, bytes swapped
//	holding   26-27  float32  DCBA   pressure_dcba  the same value, little-endian
//	holding   30-33  int64    ABCD   energy         lifetime energy, Wh (> 2^32)
//	holding   34-37  uint64   ABCD   strokes        lifetime strokes (> 2^32)
//	holding   40-43  float64  ABCD   run_hours      operating hours
//	holding   44-47  float64  ABCD   force          press force, kN, 0 unless running
//	holding   50-57  string          status_text    16 chars, e.g. "PRESS-01 OK", NUL padded
//	holding   60     uint16          status         bits 0 running, 1 fault, 2 door open, 3 e-stop
//
// Each tick (100 ms) computes the values from the clock. The state follows
// a 10-minute schedule, mostly running: stopped 20 s (door open), running
// 280 s, idle 30 s, running 230 s, fault 20 s (e-stop in its first half),
// stopped 20 s. Unit n runs 47*(n-1) s ahead of unit 1 and has its own
// noise, so a line of several presses looks alive.
//
// Like a device: addresses 0..199 of each table exist, a read reaching
// past 199 answers exception 2 (illegal data address); unit ids not served
// get no reply at all, as behind a real gateway. Holding registers and
// coils accept writes; the simulation overwrites the points it drives at
// its next tick, unless they were pinned with Set or the line is frozen.
package sim
