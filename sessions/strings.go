package sessions

// instructionText is the English text of every instruction a session gives
// (the kiosk page carries its own strings file and falls back to these).
var instructionText = map[string]string{
	"no_face":         "Look at the camera",
	"only_one_person": "Only one person, please",
	"center_face":     "Center your face in the oval",
	"more_light":      "Find more light",
	"look_straight":   "Look straight at the camera",
	"hold_still":      "Hold still",
	"done":            "Done",
	Blink:             "Blink",
	TurnLeft:          "Turn your head to your left",
	TurnRight:         "Turn your head to your right",
	LookUp:            "Look up",
	LookDown:          "Look down",
	Smile:             "Smile",
	MoveCloser:        "Move closer",
}

func instruction(code string) Instruction {
	return Instruction{Code: code, Text: instructionText[code]}
}
