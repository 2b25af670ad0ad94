package modbus

// isAgain: Windows serial ports block; there is no "try again".
func isAgain(error) bool { return false }
