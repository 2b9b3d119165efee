// Package attribution is the pure rules engine of the attribution service:
// given one install and the touches a state store found for it, it decides
// which touch (if any) caused the install, what the install costs and which
// fraud flags it carries; given an in-app event and its install, it copies
// the install's attribution onto the event and converts its revenue.
//
// The package does no I/O, keeps no state and starts no goroutines. The
// service around it owns the stores, the repartitioning and the Kafka
// transactions; it looks candidates up (by click id, advertising id, IP and
// user agent) and passes them in. Everything here is a function of its
// arguments, "now" included, so replaying the same inputs after a crash or a
// rebalance gives the same outputs byte for byte.
//
// # Rules, in order (docs: DESIGN.md "Attribution rules", issue 4)
//
//  1. click_id: the click whose id the MMP passed back.
//  2. device_id: the latest click with the install's IDFA/GAID within
//     [Rules.ClickLookback].
//  3. probabilistic: the latest click with the install's IP and user agent
//     within [Rules.ProbabilisticWindow].
//  4. view_through: the latest impression with the install's IDFA/GAID
//     within [Rules.ViewLookback].
//  5. organic.
//
// Last touch wins inside a step; an earlier step wins over a later one even
// with an older touch (a deterministic match beats a probabilistic one). A
// touch later than the install never wins, not even by a nanosecond. A touch
// exactly at the end of its window still counts; one nanosecond more does not.
//
// # Decisions where the written rules left room
//
//   - A click_id match older than the click lookback is rejected as the
//     touch and the install falls through to rules 2-5, flagged
//     ctit_beyond_window. Rejecting it (rather than attributing and flagging)
//     follows issue 4's "CTIT beyond the window (rejected)", and it makes the
//     answer independent of whether the store had already expired that click.
//   - Candidates are re-checked against the install (app, advertising id, IP
//     and UA, click id) and mismatches ignored, so a store may return a
//     superset (hash buckets, prefix scans) without corrupting a decision.
//   - Equal touch times are broken by the greater touch id, so the outcome
//     never depends on the order the store returned candidates in.
//   - Fraud flags describe the credited touch: click_injection and
//     click_flooding are set only when a click won; view-through installs
//     are not checked for injection (there was no click to inject).
//   - Cost is zero with an empty currency for organic installs; zero in the
//     campaign's currency for MMP-rejected installs and for reinstalls that
//     carry no cost of their own; otherwise the postback's own cost when it
//     has one, else the campaign's CPI bid. Fraud flags do not zero the cost:
//     they are signals for analysts, not verdicts.
//   - An install is a reinstall when the MMP says so or when the device's
//     previous install is within the re-attribution window on either side
//     (installs processed out of order must not both count as new).
//   - The MMP disagrees only about what it reported: an empty media source
//     or campaign id is no opinion; media sources compare without case, and
//     the MMP's "organic" agrees with ours.
//   - Events inherit everything but the cost (an install's CPI must not be
//     summed once per event) and MMPDisagrees (recomputed against the
//     event's own postback).
//   - Exchange rates are exact decimals with up to 18 places ([Rate]), not
//     money amounts: six places would misstate VND or IDR revenue by up to
//     1 %. Products are taken in 128 bits, so no conversion overflows
//     silently.
//
// # For the I/O layer
//
//   - Look up, per install: the click by click_id; clicks by (app, IDFA/GAID)
//     and by (app, IP, UA); impressions by (app, IDFA/GAID); a click counter
//     per (app, advertising id) over the click lookback; the previous install
//     time per (app, device). Over-returning is harmless, under-returning
//     turns installs organic. Keep records for [Rules.Retention] (use
//     [RuleSet.Retention] for a store shared by apps) plus an allowance for
//     late postbacks.
//   - Before deciding, ask [Rules.Settle]; park installs that must wait and
//     wake them when their click arrives or at [Rules.GraceDeadline].
//   - Pass a stream time, not the wall clock, as "now" to Settle, and a
//     time recorded with the input (for example the record's timestamp) to
//     Decide and AttributeEvent, so that outputs rebuilt after a crash are
//     identical to the aborted ones.
//   - After Decide, record this install's time as the device's previous
//     install only when it is not a reinstall, so the re-attribution window
//     runs from the install that was counted.
package attribution
