// Package clientevent formats stored events as clients see them
// (client-server-api "Room event format", definitions/client_event.yaml),
// for every endpoint that returns events: /sync, /messages and /context
// (syncapi), /event, /state and /members (clientapi).
//
// Events are built straight from the stored row and JSON, without parsing
// the event again, since /sync formats thousands. The filter options
// event_format ("federation": the stored JSON as it is) and event_fields
// (keep only some dot-separated paths, appendices "Dot-separated property
// paths") are applied here too.
package clientevent
