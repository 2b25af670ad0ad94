package sim

// Point is one entry of the register map: how to read it and what it means.
type Point struct {
	Name        string
	Register    string // holding | input | coil | discrete
	Address     uint16 // 0-based protocol address
	Type        string // as the modbus driver's Tag.Type
	Length      int    // registers, for string
	Bit         int    // -1 = none; else the bit of the register (bool)
	ByteOrder   string // for 32/64-bit values and strings; "" = not applicable
	Scale       float64
	Unit        string // engineering unit
	Description string
}

// Addresses of the points, shared by Map and the simulation.
const (
	addrTemperature = 0
	addrSpeed       = 4 // input
	addrState       = 10
	addrGoodParts   = 12
	addrCycleTime   = 14
	addrDoorOpen    = 3 // discrete
	addrLamp        = 0 // coil
	addrPressure    = 20
	addrEnergy      = 30
	addrStrokes     = 34
	addrRunHours    = 40
	addrForce       = 44
	addrStatusText  = 50
	lenStatusText   = 8
	addrStatus      = 60

	// tableSize: addresses 0..tableSize-1 exist in every table.
	tableSize = 200
)

// States of the press (holding 10).
const (
	Stopped = 0
	Running = 1
	Idle    = 2
	Fault   = 3
)

// Bits of the status word (holding 60).
const (
	StatusRunning = 1 << 0
	StatusFault   = 1 << 1
	StatusDoor    = 1 << 2
	StatusEStop   = 1 << 3
)

// Map is the register map of every unit, as documented in the package
// comment. It is a table to read: do not modify it.
var Map = []Point{
	{"temperature", "holding", addrTemperature, "float32", 0, -1, "ABCD", 1, "degC", "oil temperature, 60..80, smooth"},
	{"speed", "input", addrSpeed, "int16", 0, -1, "", 0.1, "rpm", "flywheel speed, raw rpm x10"},
	{"state", "holding", addrState, "uint16", 0, -1, "", 1, "", "0 stopped, 1 running, 2 idle, 3 fault"},
	{"good_parts", "holding", addrGoodParts, "uint32", 0, -1, "ABCD", 1, "", "good parts, rises while running"},
	{"cycle_time", "holding", addrCycleTime, "uint16", 0, -1, "", 1, "ms", "last cycle time, ~4000..6000"},
	{"door_open", "discrete", addrDoorOpen, "bool", 0, -1, "", 1, "", "guard door open (while stopped)"},
	{"lamp", "coil", addrLamp, "bool", 0, -1, "", 1, "", "stack lamp output, written by clients only"},
	{"pressure_abcd", "holding", addrPressure, "float32", 0, -1, "ABCD", 1, "bar", "hydraulic pressure, 123.25 + drift"},
	{"pressure_cdab", "holding", addrPressure + 2, "float32", 0, -1, "CDAB", 1, "bar", "the same pressure, word swapped"},
	{"pressure_badc", "holding", addrPressure + 4, "float32", 0, -1, "BADC", 1, "bar", "the same pressure, bytes swapped"},
	{"pressure_dcba", "holding", addrPressure + 6, "float32", 0, -1, "DCBA", 1, "bar", "the same pressure, little-endian"},
	{"energy", "holding", addrEnergy, "int64", 0, -1, "ABCD", 1, "Wh", "lifetime energy"},
	{"strokes", "holding", addrStrokes, "uint64", 0, -1, "ABCD", 1, "", "lifetime strokes"},
	{"run_hours", "holding", addrRunHours, "float64", 0, -1, "ABCD", 1, "h", "operating hours"},
	{"force", "holding", addrForce, "float64", 0, -1, "ABCD", 1, "kN", "press force, 0 unless running"},
	{"status_text", "holding", addrStatusText, "string", lenStatusText, -1, "ABCD", 1, "", `16 chars, e.g. "PRESS-01 OK"`},
	{"status", "holding", addrStatus, "uint16", 0, -1, "", 1, "", "bits 0 running, 1 fault, 2 door open, 3 e-stop"},
	{"status_running", "holding", addrStatus, "bool", 0, 0, "", 1, "", "status bit 0"},
	{"status_fault", "holding", addrStatus, "bool", 0, 1, "", 1, "", "status bit 1"},
	{"status_door", "holding", addrStatus, "bool", 0, 2, "", 1, "", "status bit 2"},
	{"status_estop", "holding", addrStatus, "bool", 0, 3, "", 1, "", "status bit 3"},
}
