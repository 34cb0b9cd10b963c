package attributes

import "math"

// Emotions are the Image API's seven emotions in the spec's fixed order.
var Emotions = []string{"ANGRY", "DISGUSTED", "SCARED", "HAPPY", "NEUTRAL", "SAD", "SURPRISED"}

// SessionLivenessHead is the kiosk sessions' passive liveness head.
const SessionLivenessHead = "liveness_session"

// Age targets an age head may regress: log(1+age) (an error of five years
// at 10 weighs more than one at 60, as people judge ages) or years.
const (
	TargetLogAge = "log1p_age"
	TargetAge    = "age"
)

// AgeTransform maps age to a regression target.
func AgeTransform(target string, age float64) float64 {
	if target == TargetLogAge {
		return math.Log1p(age)
	}
	return age
}

// AgeFromTarget inverts AgeTransform.
func AgeFromTarget(target string, t float64) float64 {
	if target == TargetLogAge {
		return math.Expm1(t)
	}
	return t
}
