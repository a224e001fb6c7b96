//! Folded stacks: one `root;…;leaf WEIGHT` line per distinct symbolised stack, sorted.

use std::collections::BTreeMap;

use crate::profile::Profile;

/// A frame name made safe for the folded format (`;` separates frames, a line is one stack).
fn folded_frame(name: &str) -> String {
    name.chars().map(|c| if matches!(c, ';' | '\n' | '\r') { '_' } else { c }).collect()
}

/// Renders `profile` as folded stacks, root first, weights summed per distinct line.
pub fn render(profile: &Profile) -> String {
    let mut stack_weights = vec![0u64; profile.stacks.len()];
    for total in &profile.totals {
        if let Some(weight) = stack_weights.get_mut(total.stack as usize) {
            *weight += total.weight;
        }
    }
    let names: Vec<String> = profile.frames.iter().map(|frame| folded_frame(&frame.function)).collect();
    // Two stacks can fold to one line (same names from different modules): sum them.
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, weight) in profile.stacks.iter().zip(stack_weights) {
        if weight == 0 {
            continue;
        }
        let mut frames: Vec<&str> = stack.map(|frame| names[frame as usize].as_str()).collect();
        frames.reverse();
        let line = frames.join(";");
        *lines.entry(line).or_insert(0) += weight;
    }
    let mut out = String::new();
    for (line, weight) in lines {
        out.push_str(&line);
        out.push(' ');
        out.push_str(&weight.to_string());
        out.push('\n');
    }
    out
}
