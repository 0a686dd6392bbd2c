//! Reading a model server's Prometheus `/metrics` text, whatever the engine, and turning two
//! readings into serving figures.
//!
//! Each engine names the same few facts its own way: vLLM `vllm:num_requests_running`,
//! SGLang `sglang:num_running_reqs`, llama.cpp (started with `--metrics`)
//! `llamacpp:requests_processing`, and so on. [`read`] maps them all onto one [`Reading`], so
//! the rest of the daemon never looks at a metric name. [`derive`] turns the previous reading
//! and this one into [`ServingStats`]: rates need two counter values, and the time to first
//! token is the median of what the histogram gained in between.
//!
//! The text is parsed by `nom-openmetrics`, one sample line at a time. A whole-document parse
//! would be stricter than the format: a family with HELP and TYPE but no samples yet (which
//! `prometheus_client` prints for a labelled metric nothing has touched), a blank line, a
//! free comment or a sample with a timestamp would fail the whole scrape, and one odd line
//! from a server must not blank every figure. So lines starting with `#` are skipped (the
//! names below say what each metric is; its TYPE adds nothing), a line whose name is one read
//! here goes to the crate's sample grammar, and a line the grammar rejects is skipped.
//!
//! Labels are folded, since a server may split one fact across label sets (vLLM's `engine`
//! per data-parallel rank, SGLang's `dp_rank`): counters and queue lengths are summed, KV-cache
//! use takes the fullest cache (the one that will refuse work first), and histogram buckets
//! with the same bound are summed.

use nom_openmetrics::Sample;
use reagent::model::ServingStats;

/// What one scrape of a model server says, in no engine's vocabulary. A field is `None` when
/// the server does not report it (llama.cpp has no TTFT histogram; recent llama.cpp has no
/// KV-cache ratio).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// When it was scraped, ms since the epoch: rates divide by the time between two readings.
    pub ts: i64,
    /// Prompt (prefill) tokens processed since the server started; a counter.
    pub prompt_tokens: Option<f64>,
    /// Tokens generated since the server started; a counter.
    pub generation_tokens: Option<f64>,
    /// Requests being served now.
    pub running: Option<f64>,
    /// Requests queued, not yet served.
    pub waiting: Option<f64>,
    /// KV-cache use, 0 to 1 (every engine reports a fraction, whatever the name says).
    pub kv_cache: Option<f64>,
    /// Time to first token, in seconds, as the server's cumulative histogram.
    pub ttft: Option<Histogram>,
}

/// A Prometheus histogram as scraped: cumulative since the server started, so the
/// observations of an interval are the difference of two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// `(upper bound, observations at or below it)`, sorted by bound, each bound once; the
    /// last bound is infinite when the server printed its `+Inf` bucket.
    pub buckets: Vec<(f64, f64)>,
    /// How many observations (`_count`), when printed.
    pub count: Option<f64>,
    /// Their sum (`_sum`), when printed.
    pub sum: Option<f64>,
}

/// Which fact a metric name carries, and how its label sets fold into one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    PromptTokens,
    GenerationTokens,
    Running,
    Waiting,
    KvCache,
}

/// Every name read, with the fact it is. A counter is listed with and without `_total`: the
/// Prometheus text format prints the suffix, a bare name is what some exporters print.
/// Order matters within a fact: the first name present wins, so a server printing both
/// vLLM's `kv_cache_usage_perc` and its deprecated twin `gpu_cache_usage_perc` is not read
/// twice.
const NAMES: &[(&str, Fact)] = &[
    ("vllm:prompt_tokens_total", Fact::PromptTokens),
    ("vllm:prompt_tokens", Fact::PromptTokens),
    ("sglang:prompt_tokens_total", Fact::PromptTokens),
    ("sglang:prompt_tokens", Fact::PromptTokens),
    ("llamacpp:prompt_tokens_total", Fact::PromptTokens),
    ("llamacpp:prompt_tokens", Fact::PromptTokens),
    ("vllm:generation_tokens_total", Fact::GenerationTokens),
    ("vllm:generation_tokens", Fact::GenerationTokens),
    ("sglang:generation_tokens_total", Fact::GenerationTokens),
    ("sglang:generation_tokens", Fact::GenerationTokens),
    ("llamacpp:tokens_predicted_total", Fact::GenerationTokens),
    ("llamacpp:tokens_predicted", Fact::GenerationTokens),
    ("vllm:num_requests_running", Fact::Running),
    ("sglang:num_running_reqs", Fact::Running),
    ("llamacpp:requests_processing", Fact::Running),
    ("vllm:num_requests_waiting", Fact::Waiting),
    ("sglang:num_queue_reqs", Fact::Waiting),
    ("llamacpp:requests_deferred", Fact::Waiting),
    ("vllm:kv_cache_usage_perc", Fact::KvCache),
    ("vllm:gpu_cache_usage_perc", Fact::KvCache),
    ("sglang:token_usage", Fact::KvCache),
    ("llamacpp:kv_cache_usage_ratio", Fact::KvCache),
];

/// The time-to-first-token histograms, by family name (samples add `_bucket`, `_count`,
/// `_sum`). llama.cpp has none.
const TTFT: &[&str] = &[
    "vllm:time_to_first_token_seconds",
    "sglang:time_to_first_token_seconds",
];

/// Whether a line holds a sample read here, from the name it starts with. Only those are
/// parsed (once the text has shown it is Prometheus text): a vLLM scrape is mostly other
/// histograms, Python's GC and the HTTP layer, and parsing each line costs allocations.
fn wanted(line: &str) -> bool {
    let name = line.split(['{', ' ', '\t']).next().unwrap_or(line);
    NAMES.iter().any(|(known, _)| *known == name)
        || TTFT.iter().any(|family| {
            name.strip_prefix(family)
                .is_some_and(|suffix| matches!(suffix, "_bucket" | "_count" | "_sum"))
        })
}

/// Reads one scrape of `/metrics` taken at `ts` (ms since the epoch).
///
/// An error means the text is not Prometheus text at all (not one sample line in it: an
/// HTML page, a JSON error such as llama.cpp's answer when started without `--metrics`).
/// Text that is Prometheus but names nothing known reads as a [`Reading`] with every field
/// `None`.
pub fn read(text: &str, ts: i64) -> Result<Reading, String> {
    let mut values: Vec<Option<f64>> = vec![None; NAMES.len()];
    let mut histograms: Vec<Partial> = vec![Partial::default(); TTFT.len()];
    let mut any_sample = false;
    let mut first_bad: Option<(usize, &str)> = None;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let ours = wanted(line);
        if !ours && any_sample {
            continue;
        }
        let parsed = with_sample(raw, line, |sample| {
            if ours {
                take(sample, &mut values, &mut histograms);
            }
        });
        if parsed {
            any_sample = true;
        } else if first_bad.is_none() {
            first_bad = Some((index + 1, line));
        }
    }
    if !any_sample {
        return Err(match first_bad {
            Some((number, line)) => format!(
                "not Prometheus text: line {number} is not a sample: {}",
                clip(line)
            ),
            None => "no samples: the text is empty or only comments".to_string(),
        });
    }
    let fact = |fact: Fact| {
        NAMES
            .iter()
            .zip(&values)
            .filter(|((_, f), _)| *f == fact)
            .find_map(|(_, value)| *value)
    };
    Ok(Reading {
        ts,
        prompt_tokens: fact(Fact::PromptTokens),
        generation_tokens: fact(Fact::GenerationTokens),
        running: fact(Fact::Running),
        waiting: fact(Fact::Waiting),
        kv_cache: fact(Fact::KvCache),
        ttft: histograms.into_iter().find_map(Partial::finish),
    })
}

/// Parses one line as a sample and hands it to `use_it`; says whether it was one. `raw` is
/// the line with its end, `line` without: the crate's grammar wants exactly one `\n` after
/// the value, so a line that ends otherwise (CRLF, the text's last line) is copied.
fn with_sample(raw: &str, line: &str, use_it: impl FnOnce(&Sample<'_>)) -> bool {
    let owned;
    let input = if raw.len() == line.len() + 1 {
        raw
    } else {
        owned = format!("{line}\n");
        owned.as_str()
    };
    match nom_openmetrics::parser::family(input) {
        Ok(("", family)) => match family.samples.first() {
            Some(sample) => {
                use_it(sample);
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// Folds one sample into the values being gathered, if its name is one of ours.
fn take(sample: &Sample<'_>, values: &mut [Option<f64>], histograms: &mut [Partial]) {
    let value = sample.number();
    // A NaN would poison a sum for good; an engine prints one only for a figure it lacks.
    if value.is_nan() {
        return;
    }
    let name = sample.name();
    if let Some(index) = NAMES.iter().position(|(known, _)| *known == name) {
        let slot = &mut values[index];
        *slot = Some(match (NAMES[index].1, *slot) {
            (_, None) => value,
            (Fact::KvCache, Some(so_far)) => so_far.max(value),
            (_, Some(so_far)) => so_far + value,
        });
        return;
    }
    for (family, partial) in TTFT.iter().zip(histograms.iter_mut()) {
        let Some(suffix) = name.strip_prefix(family) else {
            continue;
        };
        match suffix {
            "_bucket" => {
                let bound = sample
                    .labels()
                    .iter()
                    .find(|label| label.name == "le")
                    .and_then(|label| parse_bound(&label.value));
                if let Some(bound) = bound {
                    partial.buckets.push((bound, value));
                }
            }
            "_count" => partial.count = Some(partial.count.unwrap_or(0.0) + value),
            "_sum" => partial.sum = Some(partial.sum.unwrap_or(0.0) + value),
            _ => {}
        }
        return;
    }
}

/// A bucket bound as printed in `le`: `0.25`, `1.0`, `+Inf`.
fn parse_bound(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|bound| !bound.is_nan())
}

/// A histogram's samples as they arrive, one bucket per label set and bound.
#[derive(Debug, Clone, Default)]
struct Partial {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

impl Partial {
    /// Sorts the buckets and sums those of equal bound (the same bucket of several label
    /// sets); `None` when the server printed no bucket.
    fn finish(mut self) -> Option<Histogram> {
        if self.buckets.is_empty() {
            return None;
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut buckets: Vec<(f64, f64)> = Vec::with_capacity(self.buckets.len());
        for (bound, count) in self.buckets {
            match buckets.last_mut() {
                Some(last) if last.0 == bound => last.1 += count,
                _ => buckets.push((bound, count)),
            }
        }
        Some(Histogram {
            buckets,
            count: self.count,
            sum: self.sum,
        })
    }
}

/// A line cut short for an error message: a server's error page can be one long line.
fn clip(line: &str) -> String {
    const MAX: usize = 80;
    match line.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_string(),
    }
}

/// Serving figures from the previous reading (if any) and this one.
///
/// Token rates are counter deltas over the time between the readings: `None` without a
/// previous reading, when no time passed, or when a counter went down (the server restarted;
/// a negative rate would be a lie, and the next interval is right again). Running, waiting
/// and KV-cache use are this reading's. The TTFT median is over the requests that got their
/// first token in the interval (bucket deltas); since the server started when there is no
/// previous reading; since the restart when the histogram went down; `None` when no request
/// got its first token in the interval, so an idle server shows no stale latency.
pub fn derive(previous: Option<&Reading>, now: &Reading) -> ServingStats {
    let seconds = previous
        .map(|before| (now.ts - before.ts) as f64 / 1000.0)
        .filter(|seconds| *seconds > 0.0);
    let rate = |counter: fn(&Reading) -> Option<f64>| -> Option<f64> {
        let seconds = seconds?;
        let delta = counter(now)? - counter(previous?)?;
        (delta >= 0.0).then_some(delta / seconds)
    };
    let ttft = now.ttft.as_ref().and_then(|histogram| {
        let interval = previous
            .and_then(|before| before.ttft.as_ref())
            .and_then(|before| histogram.since(before))
            .unwrap_or_else(|| histogram.buckets.clone());
        quantile(0.5, &interval)
    });
    ServingStats {
        ts: now.ts,
        gen_tps: rate(|reading| reading.generation_tokens),
        prompt_tps: rate(|reading| reading.prompt_tokens),
        running: now.running,
        waiting: now.waiting,
        kv_cache: now.kv_cache,
        ttft_p50_ms: ttft.map(|seconds| seconds * 1000.0),
    }
}

impl Histogram {
    /// The cumulative buckets of what was observed after `before`, or `None` when they
    /// cannot be told apart: a bucket went down or the bounds changed (the server
    /// restarted, so everything in `self` came after the restart).
    fn since(&self, before: &Histogram) -> Option<Vec<(f64, f64)>> {
        if self.buckets.len() != before.buckets.len() {
            return None;
        }
        self.buckets
            .iter()
            .zip(&before.buckets)
            .map(|(&(bound, now), &(bound_before, then))| {
                (bound == bound_before && now >= then).then_some((bound, now - then))
            })
            .collect()
    }
}

/// The `q` quantile of cumulative `buckets` (sorted by bound), interpolated linearly inside
/// the bucket it falls in, as Prometheus's `histogram_quantile` does: the first bucket starts
/// at 0, and a quantile in the `+Inf` bucket is the highest finite bound. `None` without
/// observations or without a `+Inf` bucket (the total is unknown then).
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_bound, total) = buckets.last()?;
    if last_bound != f64::INFINITY || total <= 0.0 || buckets.len() < 2 {
        return None;
    }
    let rank = q * total;
    // Counts are cumulative, but rounding in a sum over label sets may break that by a hair.
    let mut below = 0.0_f64;
    let mut start = 0.0_f64;
    for (index, &(bound, cumulative)) in buckets.iter().enumerate() {
        let cumulative = cumulative.max(below);
        if cumulative >= rank {
            if index == buckets.len() - 1 {
                return Some(start);
            }
            if index == 0 && bound <= 0.0 {
                return Some(bound);
            }
            let inside = cumulative - below;
            if inside <= 0.0 {
                return Some(bound);
            }
            return Some(start + (bound - start) * (rank - below) / inside);
        }
        below = cumulative;
        start = bound;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM_1: &str = include_str!("testdata/vllm-1.txt");
    const VLLM_2: &str = include_str!("testdata/vllm-2.txt");
    const SGLANG: &str = include_str!("testdata/sglang.txt");
    const LLAMACPP: &str = include_str!("testdata/llamacpp.txt");
    const LLAMACPP_OLD: &str = include_str!("testdata/llamacpp-old.txt");
    /// What `tests/standin/model_server.py` printed after four streamed answers of 50 ms
    /// tokens (one cut short by its client).
    const STANDIN: &str = include_str!("testdata/standin.txt");

    fn close(got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("expected {want}, got None"));
        assert!((got - want).abs() < 1e-9, "expected {want}, got {got}");
    }

    #[test]
    fn vllm_is_read_and_summed_across_engines() {
        let reading = read(VLLM_1, 1_000).unwrap();
        assert_eq!(reading.ts, 1_000);
        close(reading.prompt_tokens, 20_000.0);
        close(reading.generation_tokens, 50_000.0);
        close(reading.running, 5.0);
        close(reading.waiting, 0.0);
        // The fuller of the two engines' caches, not their sum.
        close(reading.kv_cache, 0.31);
        let ttft = reading.ttft.unwrap();
        // 22 finite bounds and +Inf, each once although two engines print them.
        assert_eq!(ttft.buckets.len(), 23);
        assert_eq!(ttft.buckets[5], (0.06, 3.0));
        assert_eq!(ttft.buckets[6], (0.08, 11.0));
        assert_eq!(ttft.buckets[7], (0.1, 18.0));
        assert_eq!(ttft.buckets[22], (f64::INFINITY, 20.0));
        close(ttft.count, 20.0);
        close(ttft.sum, 1.0712 + 0.5013);
    }

    #[test]
    fn vllm_first_reading_has_no_rates_and_the_median_since_start() {
        let stats = derive(None, &read(VLLM_1, 1_000).unwrap());
        assert_eq!(stats.ts, 1_000);
        assert_eq!(stats.gen_tps, None);
        assert_eq!(stats.prompt_tps, None);
        close(stats.running, 5.0);
        // Cumulative: 3 at <= 60 ms, 11 at <= 80 ms, of 20. The 10th observation is the 7th
        // of the 8 in (60, 80]: 60 + 20 * 7/8 = 77.5 ms.
        close(stats.ttft_p50_ms, 77.5);
    }

    #[test]
    fn vllm_two_readings_give_rates_and_the_median_of_the_interval() {
        let before = read(VLLM_1, 1_000).unwrap();
        let now = read(VLLM_2, 6_000).unwrap();
        let stats = derive(Some(&before), &now);
        assert_eq!(stats.ts, 6_000);
        // 23 000 - 20 000 prompt tokens and 51 500 - 50 000 generated, over 5 s.
        close(stats.prompt_tps, 600.0);
        close(stats.gen_tps, 300.0);
        close(stats.running, 6.0);
        close(stats.waiting, 1.0);
        close(stats.kv_cache, 0.57);
        // The interval's 8 first tokens: 1 in (80, 100] ms, 5 in (100, 250], 2 in (250, 500].
        // The 4th is the 3rd of the 5 in (100, 250]: 100 + 150 * 3/5 = 190 ms.
        close(stats.ttft_p50_ms, 190.0);
    }

    #[test]
    fn an_idle_interval_has_no_median() {
        let before = read(VLLM_2, 1_000).unwrap();
        let now = read(VLLM_2, 6_000).unwrap();
        let stats = derive(Some(&before), &now);
        close(stats.gen_tps, 0.0);
        close(stats.prompt_tps, 0.0);
        assert_eq!(stats.ttft_p50_ms, None);
    }

    #[test]
    fn a_restart_gives_no_rate_and_the_median_since_the_restart() {
        // The second scrape is the first one's server, restarted: every counter went down.
        let before = read(VLLM_2, 1_000).unwrap();
        let now = read(VLLM_1, 6_000).unwrap();
        let stats = derive(Some(&before), &now);
        assert_eq!(stats.gen_tps, None);
        assert_eq!(stats.prompt_tps, None);
        close(stats.running, 5.0);
        close(stats.ttft_p50_ms, 77.5);
    }

    #[test]
    fn no_time_between_readings_gives_no_rate() {
        let before = read(VLLM_1, 6_000).unwrap();
        let now = read(VLLM_2, 6_000).unwrap();
        let stats = derive(Some(&before), &now);
        assert_eq!(stats.gen_tps, None);
        assert_eq!(stats.prompt_tps, None);
        // The median needs no time, only the difference.
        close(stats.ttft_p50_ms, 190.0);
        let earlier = derive(Some(&read(VLLM_1, 7_000).unwrap()), &now);
        assert_eq!(earlier.gen_tps, None);
    }

    #[test]
    fn sglang_is_read_and_summed_across_dp_ranks() {
        let reading = read(SGLANG, 5).unwrap();
        close(reading.prompt_tokens, 182_733.0);
        close(reading.generation_tokens, 96_120.0);
        close(reading.running, 12.0);
        close(reading.waiting, 3.0);
        close(reading.kv_cache, 0.61);
        let stats = derive(None, &reading);
        // 4 in (0.1, 0.2] s, 6 in (0.2, 0.4]: the 5th is the 1st of the 6,
        // 200 + 200 * 1/6 ms.
        close(stats.ttft_p50_ms, 200.0 + 200.0 / 6.0);
    }

    #[test]
    fn llamacpp_is_read_without_histogram_and_with_cpp_number_formatting() {
        let reading = read(LLAMACPP_OLD, 5).unwrap();
        // Printed as `1.23457e+06` by a C++ stream.
        close(reading.prompt_tokens, 1_234_570.0);
        close(reading.generation_tokens, 88_412.0);
        close(reading.running, 1.0);
        close(reading.waiting, 0.0);
        close(reading.kv_cache, 0.0432);
        assert_eq!(reading.ttft, None);
        assert_eq!(derive(None, &reading).ttft_p50_ms, None);
    }

    #[test]
    fn recent_llamacpp_has_no_kv_cache_ratio() {
        let reading = read(LLAMACPP, 5).unwrap();
        close(reading.prompt_tokens, 96_641.0);
        close(reading.generation_tokens, 23_210.0);
        close(reading.running, 2.0);
        close(reading.waiting, 3.0);
        assert_eq!(reading.kv_cache, None);
    }

    #[test]
    fn the_test_suite_stand_in_is_read() {
        let reading = read(STANDIN, 5).unwrap();
        close(reading.prompt_tokens, 18.0);
        close(reading.generation_tokens, 65.0);
        close(reading.running, 0.0);
        close(reading.waiting, 0.0);
        close(reading.kv_cache, 0.0);
        // Four first tokens in (40, 60] ms: the 2nd of 4 is halfway, 50 ms.
        close(derive(None, &reading).ttft_p50_ms, 50.0);
    }

    #[test]
    fn counters_are_read_with_or_without_total() {
        let bare = "vllm:prompt_tokens{engine=\"0\"} 10\nvllm:generation_tokens{engine=\"0\"} 4\n";
        let reading = read(bare, 0).unwrap();
        close(reading.prompt_tokens, 10.0);
        close(reading.generation_tokens, 4.0);
        // Both spellings: the `_total` one is read, not their sum.
        let both = format!("{bare}vllm:prompt_tokens_total{{engine=\"0\"}} 10\n");
        close(read(&both, 0).unwrap().prompt_tokens, 10.0);
    }

    #[test]
    fn the_deprecated_vllm_cache_name_is_read_when_alone() {
        let text = "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n\
                    vllm:gpu_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.75\n";
        close(read(text, 0).unwrap().kv_cache, 0.75);
    }

    #[test]
    fn odd_lines_are_skipped_not_fatal() {
        let text = "# a free comment\n\
                    \n\
                    vllm:num_requests_running{engine=\"0\"} 2.0\r\n\
                    vllm:num_requests_waiting{engine=\"0\"} 1 1700000000000\n\
                    this is not a sample\n\
                    vllm:kv_cache_usage_perc{engine=\"0\"} NaN\n\
                    vllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n\
                    vllm:prompt_tokens_total{model_name=\"a \\\"quoted\\\" name\"} 7";
        let reading = read(text, 0).unwrap();
        // CRLF is fine; the timestamped sample is skipped; NaN does not poison the max; the
        // last line needs no newline; escaped quotes in a label value do not end it.
        close(reading.running, 2.0);
        assert_eq!(reading.waiting, None);
        close(reading.kv_cache, 0.5);
        close(reading.prompt_tokens, 7.0);
    }

    #[test]
    fn text_that_is_not_prometheus_is_an_error() {
        let json = r#"{"error":{"code":501,"message":"This server does not support metrics endpoint. Start it with `--metrics`","type":"not_supported_error"}}"#;
        let err = read(json, 0).unwrap_err();
        assert!(err.starts_with("not Prometheus text: line 1"), "{err}");
        assert!(err.ends_with('…'), "{err}");
        assert!(read("<html><body>502 Bad Gateway</body></html>\n", 0).is_err());
        assert!(read("", 0).is_err());
        assert!(read("# HELP vllm:x y\n# TYPE vllm:x gauge\n", 0).is_err());
    }

    #[test]
    fn prometheus_text_naming_nothing_known_reads_empty() {
        let text = "# TYPE up gauge\nup 1\nprocess_open_fds 12\n";
        assert_eq!(
            read(text, 9).unwrap(),
            Reading {
                ts: 9,
                ..Reading::default()
            }
        );
    }

    #[test]
    fn quantile_interpolates_like_histogram_quantile() {
        let inf = f64::INFINITY;
        // 2 at <= 0.1, 4 more at <= 0.2, 3 more at <= 0.5, 1 above: the 5th of 10 is the 3rd
        // of the 4 in (0.1, 0.2]: 0.1 + 0.1 * 3/4.
        let buckets = [(0.1, 2.0), (0.2, 6.0), (0.5, 9.0), (inf, 10.0)];
        close(quantile(0.5, &buckets), 0.175);
        // 90th: rank 9, the last of the 3 in (0.2, 0.5].
        close(quantile(0.9, &buckets), 0.5);
        // In the first bucket: it starts at 0. Rank 1 of the 2 there.
        close(quantile(0.1, &buckets), 0.05);
        // All in the +Inf bucket: the highest finite bound.
        close(quantile(0.5, &[(0.1, 0.0), (0.2, 0.0), (inf, 4.0)]), 0.2);
        // Nothing observed, no +Inf bucket, or too few buckets: unknown.
        assert_eq!(quantile(0.5, &[(0.1, 0.0), (inf, 0.0)]), None);
        assert_eq!(quantile(0.5, &[(0.1, 1.0), (0.2, 2.0)]), None);
        assert_eq!(quantile(0.5, &[(inf, 3.0)]), None);
        assert_eq!(quantile(0.5, &[]), None);
    }

    #[test]
    fn interval_buckets_are_the_difference_unless_the_histogram_was_reset() {
        let inf = f64::INFINITY;
        let histogram = |buckets: Vec<(f64, f64)>| Histogram {
            buckets,
            count: None,
            sum: None,
        };
        let before = histogram(vec![(0.1, 2.0), (0.2, 6.0), (inf, 10.0)]);
        let now = histogram(vec![(0.1, 3.0), (0.2, 9.0), (inf, 14.0)]);
        assert_eq!(
            now.since(&before),
            Some(vec![(0.1, 1.0), (0.2, 3.0), (inf, 4.0)])
        );
        let reset = histogram(vec![(0.1, 1.0), (0.2, 1.0), (inf, 1.0)]);
        assert_eq!(reset.since(&before), None);
        let other_bounds = histogram(vec![(0.1, 3.0), (0.3, 9.0), (inf, 14.0)]);
        assert_eq!(other_bounds.since(&before), None);
    }
}
