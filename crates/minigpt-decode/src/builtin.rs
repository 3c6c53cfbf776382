//! The explicit list of built-in plugins. Adding one: a file under `processors/` or
//! `selectors/`, and one line here.

use crate::processors as p;
use crate::registry::Registry;
use crate::searches as q;
use crate::selectors as s;

impl Registry {
    /// Every built-in processor, selector and search strategy, in the order `minigpt strategies` lists them.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        let processors = [
            (
                p::temperature::INFO,
                p::temperature::build as crate::registry::ProcessorCtor,
            ),
            (p::top_k::INFO, p::top_k::build),
            (p::top_p::INFO, p::top_p::build),
            (p::min_p::INFO, p::min_p::build),
            (p::typical_p::INFO, p::typical_p::build),
            (p::epsilon::INFO, p::epsilon::build),
            (p::eta::INFO, p::eta::build),
            (p::top_n_sigma::INFO, p::top_n_sigma::build),
            (p::repetition_penalty::INFO, p::repetition_penalty::build),
            (p::frequency_penalty::INFO, p::frequency_penalty::build),
            (p::presence_penalty::INFO, p::presence_penalty::build),
            (p::no_repeat_ngram::INFO, p::no_repeat_ngram::build),
            (p::logit_bias::INFO, p::logit_bias::build),
            (p::min_new_tokens::INFO, p::min_new_tokens::build),
            (p::xtc::INFO, p::xtc::build),
            (p::dry::INFO, p::dry::build),
        ];
        for (info, build) in processors {
            r.register_processor(info, build)
                .expect("built-in names are unique");
        }
        let selectors = [
            (
                s::greedy::INFO,
                s::greedy::build as crate::registry::SelectorCtor,
            ),
            (s::multinomial::INFO, s::multinomial::build),
            (s::mirostat_v2::INFO, s::mirostat_v2::build),
        ];
        for (info, build) in selectors {
            r.register_selector(info, build)
                .expect("built-in names are unique");
        }
        let searches = [
            (
                q::beam_search::INFO,
                q::beam_search::build as crate::registry::SearchCtor,
            ),
            (q::contrastive_search::INFO, q::contrastive_search::build),
        ];
        for (info, build) in searches {
            r.register_search(info, build)
                .expect("built-in names are unique");
        }
        r
    }
}
