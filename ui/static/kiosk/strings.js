// Every user-facing string of the kiosk page, in one place.
//
// instruction: keyed by the liveness session's instruction codes; a code not
// listed here shows the server's own instruction.text. Directions are the
// person's own: "turn_left" means the person turns to their own left, which
// on the mirrored preview is toward the left of the screen.
// ui: the page's other text. "{step}" and "{steps}" are filled in.
// reason: optional texts for a finished session's result.reason, keyed by
// its value; an unknown reason shows nothing rather than a technical string.
//
// A language is picked with ?lang=xx, else the browser's language, else "en".
window.KIOSK_STRINGS = {
  en: {
    instruction: {
      starting: "Getting ready\u2026",
      no_face: "Look at the screen",
      only_one_person: "Only one person, please",
      move_closer: "Move closer",
      move_back: "Move back a little",
      center_face: "Put your face in the oval",
      hold_still: "Hold still",
      more_light: "Find more light",
      look_straight: "Look straight ahead",
      blink: "Blink",
      turn_left: "Turn your head to your left",
      turn_right: "Turn your head to your right",
      look_up: "Look up",
      look_down: "Look down",
      smile: "Smile",
      done: "All done",
      unknown: "Follow the instructions",
    },
    ui: {
      page_title: "Face check",
      step: "Step {step} of {steps}",
      success_title: "Thank you, you are verified",
      success_text: "You can go ahead.",
      retry_title: "We could not verify you",
      retry_text: "Please try again.",
      expired_title: "Time ran out",
      canceled_title: "Check canceled",
      error_title: "Something went wrong",
      error_camera: "The camera is not available.",
      error_service: "The face check service is not available.",
      error_network: "The connection was lost.",
      restart: "Try again",
      again: "Start again",
    },
    reason: {
      timeout: "The check took too long.",
      no_face: "No face was seen.",
      multiple_faces: "More than one person was seen.",
      spoof: "The check did not pass.",
      challenge_failed: "A step was not completed.",
      reference_mismatch: "The face did not match.",
    },
  },
};
