//! GPT-2 on Burn.
