// Package projection runs the worker that keeps the read model current. It
// consumes reaction changes from the stream through a consumer group and
// folds them into message_views, then refreshes the cached pages.
//
// The ordering rules that make it exact:
//   - an entry is acknowledged only after the fold that covers it has
//     committed, so a worker that dies mid-batch leaves its entries pending
//     for itself (after a restart) or for another worker (claim);
//   - a fold applies the difference between a reaction's current and last
//     projected state, so a duplicate, late or reordered entry changes
//     nothing twice (see postgres.Projector);
//   - a sweeper folds changes whose entries were lost, so trimming the
//     stream or losing Redis loses nothing.
package projection
