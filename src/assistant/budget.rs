//! What of the sources and the conversation fits the model's context.
//!
//! Small local models have small contexts (llama.cpp's server is started
//! with 4,096 tokens by `scripts/local-llm.sh`): a prompt that does not fit
//! fails or is cut by the server from the front. So the prompt is budgeted
//! here before it is sent: the answer's room (`llm.max_tokens`) and the
//! fixed parts (rules, question) first, then the sources, most relevant
//! first, each passage whole while it fits and the first one cut at a
//! paragraph or word boundary when even it does not, then as many recent
//! turns of the conversation as fit in what is left (at most a quarter of
//! the budget).
//!
//! Tokens are estimated, not counted: the model's tokenizer is not known
//! (any OpenAI-compatible endpoint), so the estimate errs on the large side
//! (four characters a token for ASCII text, one token for every other
//! character).

use super::context::Earlier;

/// Share of the budget the conversation's earlier turns may take at most.
const HISTORY_SHARE: usize = 4;
/// A passage cut to fit is not worth giving below this many tokens.
const MIN_PASSAGE_TOKENS: usize = 48;
/// Per-message overhead of the chat format (role markers and the like).
const MESSAGE_OVERHEAD: usize = 8;

/// Estimated tokens of `text` (never less than the real count for usual
/// tokenizers of English text; generous for other scripts).
pub(crate) fn estimate_tokens(text: &str) -> usize {
    let mut ascii = 0usize;
    let mut other = 0usize;
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(4) + other
}

/// The passages (most relevant first) that fit in `budget` tokens, as
/// `(index in texts, text)`: whole passages in order while they fit (a
/// later, shorter one may still fit after a longer one did not); the first
/// passage is cut to the budget when even it does not fit whole. Returns
/// the kept passages and the tokens they use.
pub(crate) fn fit_passages(texts: &[&str], budget: usize) -> (Vec<(usize, String)>, usize) {
    let mut kept = Vec::new();
    let mut used = 0;
    for (i, text) in texts.iter().enumerate() {
        let cost = estimate_tokens(text) + MESSAGE_OVERHEAD;
        if used + cost <= budget {
            used += cost;
            kept.push((i, text.to_string()));
        } else if i == 0 && budget > MIN_PASSAGE_TOKENS + MESSAGE_OVERHEAD {
            let text = cut(text, budget - MESSAGE_OVERHEAD);
            used += estimate_tokens(&text) + MESSAGE_OVERHEAD;
            kept.push((i, text));
        }
    }
    (kept, used)
}

/// The most recent earlier turns that fit in `budget` tokens (and in a
/// quarter of `total`), oldest first; a turn that does not fit ends the
/// walk back, so the kept turns are always the latest ones without gaps.
pub(crate) fn fit_history(earlier: &[Earlier], budget: usize, total: usize) -> Vec<Earlier> {
    let budget = budget.min(total / HISTORY_SHARE);
    let mut used = 0;
    let mut kept: Vec<Earlier> = Vec::new();
    for turn in earlier.iter().rev() {
        let cost = estimate_tokens(&turn.text) + MESSAGE_OVERHEAD;
        if used + cost > budget {
            break;
        }
        used += cost;
        kept.push(turn.clone());
    }
    kept.reverse();
    kept
}

/// `text` cut to about `tokens` tokens: at the last paragraph break, else
/// the last line break, else the last space before the limit, else at a
/// character boundary; " …" marks the cut.
pub(crate) fn cut(text: &str, tokens: usize) -> String {
    if estimate_tokens(text) <= tokens {
        return text.to_string();
    }
    let mut end = 0;
    let mut used = 0usize;
    let mut ascii_run = 0usize;
    for (i, c) in text.char_indices() {
        let cost = if c.is_ascii() {
            ascii_run += 1;
            usize::from(ascii_run % 4 == 1)
        } else {
            1
        };
        // Room for the marker.
        if used + cost + 2 > tokens {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    let head = &text[..end];
    let at = head
        .rfind("\n\n")
        .filter(|&i| i >= end / 2)
        .or_else(|| head.rfind('\n').filter(|&i| i >= end / 2))
        .or_else(|| head.rfind(' ').filter(|&i| i >= end / 2))
        .unwrap_or(end);
    format!("{} …", head[..at].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::context::Role;
    use crate::hostile::text;
    use proptest::prelude::*;

    #[test]
    fn passages_are_kept_in_order_while_they_fit() {
        let long = "word ".repeat(400);
        let short = "Refunds take 14 days.";
        let (kept, used) = fit_passages(&[short, &long, short], 100);
        assert_eq!(kept, vec![(0, short.to_string()), (2, short.to_string())]);
        assert!(used <= 100);
        // A budget that holds everything keeps everything.
        let (kept, _) = fit_passages(&[short, &long], 10_000);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn a_first_passage_too_long_is_cut_at_a_paragraph() {
        let text = format!("{}\n\n{}", "alpha ".repeat(60), "beta ".repeat(400));
        let (kept, used) = fit_passages(&[&text], 150);
        assert_eq!(kept.len(), 1);
        assert!(used <= 150, "{used}");
        assert!(kept[0].1.starts_with("alpha"));
        assert!(kept[0].1.ends_with(" …"));
        assert!(!kept[0].1.contains("beta"));
        // Nothing is given when not even a useful part fits.
        let (kept, _) = fit_passages(&[&"x".repeat(1000)], 20);
        assert!(kept.is_empty());
    }

    #[test]
    fn history_keeps_the_latest_turns_within_a_quarter() {
        let turn = |role, text: &str| Earlier {
            role,
            text: text.into(),
        };
        let earlier = vec![
            turn(Role::Customer, &"old question ".repeat(50)),
            turn(Role::Bot, "Short answer."),
            turn(Role::Customer, "Latest question?"),
        ];
        let kept = fit_history(&earlier, 1_000, 400);
        assert_eq!(kept, earlier[1..].to_vec());
        assert!(fit_history(&earlier, 5, 400).is_empty());
        assert_eq!(fit_history(&earlier, 10_000, 100_000), earlier);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn hostile_text_is_cut_within_the_budget_on_a_char_boundary(s in text(), tokens in 3usize..400) {
            let out = cut(&s, tokens);
            prop_assert!(estimate_tokens(&out) <= tokens.max(estimate_tokens(" …")) || out == s);
            let body = out.strip_suffix(" …").unwrap_or(&out);
            prop_assert!(s.starts_with(body.trim_end()) || s == out);
        }

        #[test]
        fn hostile_passages_fit_the_budget(a in text(), b in text(), budget in 0usize..600) {
            let (kept, used) = fit_passages(&[&a, &b], budget);
            prop_assert!(used <= budget || kept.is_empty());
            let total: usize = kept.iter().map(|(_, t)| estimate_tokens(t) + MESSAGE_OVERHEAD).sum();
            prop_assert_eq!(total, used);
        }
    }
}
