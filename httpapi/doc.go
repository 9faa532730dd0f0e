// Package httpapi is the API's HTTP transport: the routes, thin handlers
// that decode a request, call one command or query and encode its answer,
// the JSON codec and its error bodies, and the middleware (request ids,
// metrics and the access log, panics, CORS, bearer tokens, rate limits,
// readiness, deadlines). It also serves the OpenAPI document.
package httpapi
