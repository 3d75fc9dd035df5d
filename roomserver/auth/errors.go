package auth

import "strings"

// NotAllowedError is returned when an event fails an authorization rule. It
// means the event is rejected (or soft-failed, when the state it was checked
// against is the current state), never that something went wrong.
type NotAllowedError struct {
	// Rule names the rule that refused, e.g. "m.room.member join".
	Rule string
	// Reason says what about the event or the state failed the rule.
	Reason string
}

func (e *NotAllowedError) Error() string { return e.Rule + ": " + e.Reason }

// refuse builds a *NotAllowedError.
func refuse(rule, reason string) error { return &NotAllowedError{Rule: rule, Reason: reason} }

// MissingAuthEventsError is returned by CheckAuthEvents when events that the
// event cites (or, in room version 12, its create event) were not supplied.
// Unlike NotAllowedError it is not a verdict: fetch the events and retry.
type MissingAuthEventsError struct {
	IDs []string
}

func (e *MissingAuthEventsError) Error() string {
	return "missing auth events: " + strings.Join(e.IDs, ", ")
}
