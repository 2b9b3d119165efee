// Package traffic generates a realistic, seeded campaign day for the
// pipeline and the ground truth it must produce. It is pure: no HTTP, no
// Kafka, no ClickHouse; pkg/simulate plays a Plan against ingest and reads
// ClickHouse back.
//
// A Plan is apps (one per MMP, so each measures its installs the way that
// MMP does), campaigns of every cost model, and requests in send order:
// impressions and clicks (browser redirects and server-to-server), install,
// in-app event and rejected-install postbacks in each MMP's published
// format (docs/mmp), MMP retries of the same postback, and a share of
// malformed and unauthenticated ones. Every install is designed with the
// outcome the attribution rules must give it (click id, device id, IP + UA,
// view-through or organic; injected clicks, click floods, MMP rejections,
// reinstalls), so the truth does not come from the code under test.
//
//	plan, err := traffic.Generate(traffic.Options{Seed: 1, Run: "r1", Rate: 200, Duration: time.Minute})
//	// play plan.Requests, render each postback with Render, record Outcomes
//	truth := traffic.Truth(plan, outcomes)
//	report := traffic.Compare(truth, found)
//
// Times the rules compare (click to install) are resolved when a request is
// sent, from the answer time of the touch it follows, so a slow run never
// turns a designed 30 s click-to-install into an injected one.
package traffic
