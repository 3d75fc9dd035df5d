// Package httputil is the HTTP plumbing shared by every Myelin API: the one
// place that writes Matrix errors and JSON responses, reads JSON request
// bodies under a size limit, and wraps handlers with request IDs, access
// logs, metrics hooks, panic recovery, request deadlines and CORS.
//
// Spec sections implemented here:
//   - client-server-api "Standard error response", "Common error codes" and
//     "Rate limiting" (Error, WriteError; Retry-After on 429),
//   - client-server-api "Web Browser Clients" (CORS headers on every
//     response, OPTIONS answered without running the endpoint),
//   - the M_UNRECOGNIZED rule: 404 for an unknown endpoint, 405 for a known
//     endpoint with the wrong method.
//
// Handlers stay thin: parse with ReadJSON, call one component method, answer
// with WriteJSON or WriteError.
package httputil
