package auth

import "strconv"

// checkPowerLevels implements the rules for m.room.power_levels events
// (rule 10 of versions 1 to 5, 9 of 6 to 11, 10 of 12): the new content must
// be valid, creators may not be listed (version 12), and a sender may only
// add, change or remove levels up to their own.
func (x *checkCtx) checkPowerLevels(cur *PowerLevels, senderLevel int64) error {
	const rule = "m.room.power_levels"
	ev := x.ev
	next, err := ParsePowerLevels(x.ver, ev.Content())
	if err != nil {
		return refuse(rule, err.Error())
	}
	if x.ver.PrivilegedCreators {
		for _, c := range x.create.creators {
			if _, ok := next.Users[c]; ok {
				return refuse(rule, "content.users lists the room creator "+c)
			}
		}
	}
	if !cur.fromEvent {
		return nil // the room's first power levels event
	}
	for i := 0; i < numFields; i++ {
		oldHas, newHas := cur.has(i), next.has(i)
		oldLevel, newLevel := *cur.field(i), *next.field(i)
		if oldHas == newHas && (!oldHas || oldLevel == newLevel) {
			continue // neither added, changed nor removed
		}
		if oldHas && oldLevel > senderLevel {
			return refuse(rule, "the current "+fieldName(i)+" is above the sender's power level")
		}
		if newHas && newLevel > senderLevel {
			return refuse(rule, "the new "+fieldName(i)+" is above the sender's power level")
		}
	}
	if err := checkLevelMap("events", cur.Events, next.Events, senderLevel); err != nil {
		return err
	}
	if x.ver.NotificationsPowerLevels {
		if err := checkLevelMap("notifications", cur.Notifications, next.Notifications, senderLevel); err != nil {
			return err
		}
	}
	sender := ev.Sender()
	for u, oldLevel := range cur.Users {
		if newLevel, ok := next.Users[u]; (!ok || newLevel != oldLevel) && u != sender && oldLevel >= senderLevel {
			return refuse(rule, "cannot change or remove the level of "+u+", which is not below the sender's")
		}
	}
	for u, newLevel := range next.Users {
		if oldLevel, ok := cur.Users[u]; (!ok || oldLevel != newLevel) && newLevel > senderLevel {
			return refuse(rule, "cannot give "+u+" a level above the sender's")
		}
	}
	return nil
}

// checkLevelMap applies the rules for the "events" and "notifications"
// maps: entries changed or removed must not have been above the sender's
// level, entries added or changed must not be above it.
func checkLevelMap(name string, cur, next map[string]int64, senderLevel int64) error {
	const rule = "m.room.power_levels"
	for k, oldLevel := range cur {
		if newLevel, ok := next[k]; (!ok || newLevel != oldLevel) && oldLevel > senderLevel {
			return refuse(rule, "the current "+name+"["+strconv.Quote(k)+"] is above the sender's power level")
		}
	}
	for k, newLevel := range next {
		if oldLevel, ok := cur[k]; (!ok || oldLevel != newLevel) && newLevel > senderLevel {
			return refuse(rule, "the new "+name+"["+strconv.Quote(k)+"] is above the sender's power level")
		}
	}
	return nil
}
