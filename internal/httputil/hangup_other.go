//go:build !linux

package httputil

// Elsewhere than Linux, a parked request does not notice its client going
// away: it is answered at its timeout like any other.

type hangupWatcher struct{}

var watcher hangupWatcher

func (hangupWatcher) watch(*Parked) bool { return false }
func (hangupWatcher) unwatch(*Parked)    {}
