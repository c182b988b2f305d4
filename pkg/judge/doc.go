// Package judge compares a canary's samples of a metric with those of the
// version it replaces and says whether the canary is worse, better or the
// same: the statistical judge behind a metric's compare block.
//
// Two tests are offered:
//
//   - MannWhitney, for continuous metrics such as latency or saturation: the
//     Wilcoxon rank-sum (Mann-Whitney U) test with tie and continuity
//     correction (normal approximation), the Hodges-Lehmann estimate of the
//     shift between the two samples and its confidence interval, and the
//     ratio of the means as the effect size. A metric is High (or Low) only
//     when the whole interval lies beyond a tolerance band around zero and
//     the effect size passes the allowed increase (or decrease): a
//     difference must be both statistically clear and large enough to
//     matter. This is the rule of Kayenta's judge.
//   - Proportions, for error rates: a two-proportion z-test on the counts of
//     events (errors or successes) and of all requests on each side, which
//     stays valid when one side has no errors at all, with Newcombe's score
//     interval for the difference of the two rates and the rate ratio as
//     the effect size.
//
// Every result carries its verdict (Pass, High, Low, NoData, Inconclusive),
// the reason in a sentence, and the statistics it was decided on, so that a
// person can see why. Everything here is pure: two samples in, a Result out.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package judge
