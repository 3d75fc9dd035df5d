// Package pushrules is the "Push Rules" part of the client-server spec's
// push module as pure code: rules and rulesets in their JSON form (the
// m.push_rules account data and the /pushrules API), the server-default
// rules, the edits the API makes (PUT with before and after, DELETE,
// enabled, actions), and the evaluation of an event for many users.
//
// Evaluation is built for rooms with thousands of local members:
//
//   - a user's ruleset is compiled once (Compiler.Compile) and reused until
//     it changes; rulesets that differ only in their owner's user ID (every
//     user still on the server defaults) compile to one shared *Compiled;
//   - an event is parsed once (NewEvent) into a flat table of its
//     properties, keyed by dot-separated path, with strings lowercased once;
//   - users sharing a *Compiled get the result computed once per distinct
//     answer of the conditions that name the owner (is this user mentioned,
//     is this user the target of the membership event), so a message to a
//     room of 10,000 users on the defaults is evaluated a handful of times.
//
// It does no I/O and imports nothing of Myelin: the client API (which
// edits rules) and the notifier (which evaluates them) both use it, and
// neither depends on the other.
package pushrules
