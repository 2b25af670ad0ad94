package configs

// A catalogue categorises the states of a standard state model for OEE
// (collector/OEE.md, "State catalogues"). A catalogue cannot know whether a
// stop was planned, and counting a stop as planned would raise availability
// above the truth: so every state that is not production counts as an
// unplanned stop, and a plant lists its planned ones (idle, maintenance)
// under planned_stop. A state that says nothing is known (PackML Undefined,
// EUROMAP OFFLINE) counts as unknown, never as run.
type catalogueState struct {
	code int64 // the state's code, or -1 when the model gives none here
	name string
	cat  string
}

// CatalogueNames are the values of oee.states_catalogue.
var CatalogueNames = []string{"packml", "weihenstephan", "euromap84"}

var catalogues = map[string][]catalogueState{
	// PackML (ANSI/ISA-TR88.00.02, OMAC PackML): the codes are PackTags
	// StateCurrent.
	"packml": {
		{0, "undefined", OEEUnknown},
		{1, "clearing", OEEUnplannedStop},
		{2, "stopped", OEEUnplannedStop},
		{3, "starting", OEEUnplannedStop},
		{4, "idle", OEEUnplannedStop},
		{5, "suspended", OEEUnplannedStop},
		{6, "execute", OEERun},
		{7, "stopping", OEEUnplannedStop},
		{8, "aborting", OEEUnplannedStop},
		{9, "aborted", OEEUnplannedStop},
		{10, "holding", OEEUnplannedStop},
		{11, "held", OEEUnplannedStop},
		{12, "unholding", OEEUnplannedStop},
		{13, "suspending", OEEUnplannedStop},
		{14, "unsuspending", OEEUnplannedStop},
		{15, "resetting", OEEUnplannedStop},
		{16, "completing", OEEUnplannedStop},
		{17, "complete", OEEUnplannedStop},
	},
	// Weihenstephan Standards (WS Pack; OPC 40600, which models them on
	// the PackML states with the substates Lack, Tailback, Prepared and
	// the branch lines of Suspended). WS_Cur_State codes are not given
	// here: name them with states: on the tag.
	"weihenstephan": {
		{-1, "undefined", OEEUnknown},
		{-1, "operating", OEERun},
		{-1, "off", OEEUnplannedStop},
		{-1, "stopped", OEEUnplannedStop},
		{-1, "starting", OEEUnplannedStop},
		{-1, "prepared", OEEUnplannedStop},
		{-1, "lack", OEEUnplannedStop},
		{-1, "tailback", OEEUnplannedStop},
		{-1, "lack branch line", OEEUnplannedStop},
		{-1, "tailback branch line", OEEUnplannedStop},
		{-1, "stopping", OEEUnplannedStop},
		{-1, "idle", OEEUnplannedStop},
		{-1, "holding", OEEUnplannedStop},
		{-1, "held", OEEUnplannedStop},
		{-1, "unholding", OEEUnplannedStop},
		{-1, "suspending", OEEUnplannedStop},
		{-1, "suspended", OEEUnplannedStop},
		{-1, "unsuspending", OEEUnplannedStop},
		{-1, "aborting", OEEUnplannedStop},
		{-1, "aborted", OEEUnplannedStop},
		{-1, "clearing", OEEUnplannedStop},
		{-1, "resetting", OEEUnplannedStop},
		{-1, "completing", OEEUnplannedStop},
		{-1, "complete", OEEUnplannedStop},
		{-1, "emergency stop", OEEUnplannedStop},
		{-1, "equipment failure", OEEUnplannedStop},
		{-1, "external failure", OEEUnplannedStop},
	},
	// EUROMAP 84 (OPC 40084-1 v1.01, extrusion lines): the codes are the
	// ComponentStatusEnumeration of a device's Status.
	"euromap84": {
		{0, "offline", OEEUnknown},
		{1, "idle", OEEUnplannedStop},
		{2, "preparing", OEEUnplannedStop},
		{3, "ready_to_run", OEEUnplannedStop},
		{4, "manual_run", OEERun},
		{5, "controlled_run", OEERun},
		{6, "malfunction", OEEUnplannedStop},
		{7, "maintenance", OEEUnplannedStop},
	},
}
