//! Draws `top`'s screen with ratatui: a status block, the hottest functions, the threads.

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use super::window::Totals;
use crate::format_numbers::{percent, percent_of, seconds};

/// What the status block says besides the totals.
pub struct Status<'a> {
    /// `python3 (pid 1234)` or the file being waited for.
    pub what: &'a str,
    /// `running`, `ended: clean exit`, `command exited with status 3`, …
    pub state: &'a str,
    pub window_seconds: u64,
}

/// Draws one screen.
pub fn draw(frame: &mut Frame, status: &Status, totals: &Totals) {
    let thread_rows = totals.threads.len().min(8) as u16;
    let [head, functions, threads, foot] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(5), Constraint::Length(thread_rows + 3), Constraint::Length(1)]).areas(frame.area());
    let head_text = vec![
        Line::from(format!(
            "sigtrace top — {} — {} — trace time {}, {} generations",
            status.what,
            status.state,
            seconds(totals.trace_time_ns),
            totals.generations
        )),
        Line::from(format!(
            "last {} s: {} samples (weight {}), capture {}, dropped {}",
            status.window_seconds,
            totals.samples,
            totals.weight,
            percent(totals.capture_ratio),
            totals.dropped
        )),
    ];
    frame.render_widget(Paragraph::new(head_text).block(Block::default().borders(Borders::BOTTOM)), head);

    let bold = Style::default().add_modifier(Modifier::BOLD);
    let rows: Vec<Row> = totals
        .functions
        .iter()
        .take(functions.height.saturating_sub(1) as usize)
        .map(|line| {
            Row::new(vec![
                format!("{:6.2}%", percent_of(line.self_weight, totals.weight)),
                format!("{:6.2}%", percent_of(line.total_weight, totals.weight)),
                line.self_weight.to_string(),
                line.function.clone(),
                line.module.clone(),
            ])
        })
        .collect();
    let widths = [Constraint::Length(8), Constraint::Length(8), Constraint::Length(8), Constraint::Fill(3), Constraint::Fill(1)];
    let table = Table::new(rows, widths).header(Row::new(vec!["self%", "total%", "self", "function", "module"]).style(bold));
    frame.render_widget(table, functions);

    let span_ns = totals.span_ns.max(1);
    let rows: Vec<Row> = totals
        .threads
        .iter()
        .take(thread_rows as usize)
        .map(|thread| {
            Row::new(vec![thread.tid.to_string(), thread.name.clone(), format!("{:6.1}%", percent_of(thread.cpu_ns, span_ns)), seconds(thread.cpu_ns)])
        })
        .collect();
    let widths = [Constraint::Length(9), Constraint::Length(18), Constraint::Length(8), Constraint::Length(12)];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["tid", "thread", "cpu%", "cpu"]).style(bold))
        .block(Block::default().borders(Borders::TOP).title("threads (sampled CPU time over the window)"));
    frame.render_widget(table, threads);
    frame.render_widget(Paragraph::new("q quits"), foot);
}
