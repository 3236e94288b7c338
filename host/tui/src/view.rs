//! How the TUI draws its state: the filter tabs, the session list, the
//! selected session's details, the status bar and key hints, and the help
//! and confirmation overlays. Text that comes from sessions is shown with its
//! control characters made visible, never obeyed.

use clauderon_client::safe_text::for_terminal;
use clauderon_sessions::{AgentStatus, Isolation, Session, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::app::{App, AuditRecord, CHAT_KEYS, Connection, Decision, KEYS, Mode, Pane, SessionView};
use crate::attach::Attached;
use crate::create::{Choice, CreateForm, Field, Picker};
use crate::list::{SortKey, Tab};
use clauderon_client::kebab;

/// The smallest terminal the TUI draws in; a smaller one gets a sentence saying so.
pub const MIN_WIDTH: u16 = 44;
pub const MIN_HEIGHT: u16 = 8;

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "This terminal is {}×{}; clauderon tui needs at least {MIN_WIDTH}×{MIN_HEIGHT}. Make it larger, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let theme = Theme { color: app.color };
    if let Some(attached) = &app.attached {
        draw_attached(frame, app, attached, &theme, area);
        return;
    }
    if let Some(chat) = &app.session {
        draw_chat(frame, app, chat, &theme, area);
        match &app.mode {
            Mode::Help => draw_help(frame, &theme, area, CHAT_KEYS),
            Mode::Confirm { question, .. } => draw_confirm(frame, &theme, area, question),
            Mode::List | Mode::Search => {}
        }
        return;
    }
    let [tabs, table, detail, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_tabs(frame, app, &theme, tabs);
    draw_table(frame, app, &theme, table);
    draw_detail(frame, app, &theme, detail);
    draw_status(frame, app, &theme, status);
    draw_hints(frame, app, &theme, hints);
    match &app.mode {
        Mode::Help => draw_help(frame, &theme, area, KEYS),
        Mode::Confirm { question, .. } => draw_confirm(frame, &theme, area, question),
        Mode::List | Mode::Search => {}
    }
    if let Some(form) = &app.create {
        draw_create(frame, form, &theme, area);
    }
}

/// The embedded terminal: a title line (the session, how to leave, the
/// lock, how far back it is scrolled, why it ended) over the session's screen.
fn draw_attached(frame: &mut Frame, app: &App, t: &Attached, theme: &Theme, area: Rect) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let state = app.sessions.get(&t.id).map(|s| kebab(&s.agent_status)).unwrap_or_else(|| "deleted".into());
    let mut spans = vec![
        Span::styled(
            format!(" {} ", one_line(&t.name)),
            theme.paint(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        ),
        Span::styled(
            format!(" {state} "),
            app.sessions.get(&t.id).map(|s| theme.agent(s.agent_status)).unwrap_or_default(),
        ),
    ];
    // Before the hints, which are cut first on a narrow terminal.
    let back = t.parser.screen().scrollback();
    if back > 0 && t.ended.is_none() {
        spans.push(Span::styled(format!(" ↑ {back} lines back (type to return) "), theme.fg(Color::Yellow)));
    }
    if let Some(why) = &t.ended {
        spans.push(Span::styled(
            one_line(&format!(" {why}; any key goes back to the list")),
            theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    } else if t.locked {
        spans.push(Span::styled(
            " LOCKED: every key goes to the session; Ctrl-L unlocks",
            theme.fg(Color::Magenta).add_modifier(Modifier::BOLD),
        ));
    } else {
        spans.push(Span::styled(
            " Ctrl-Q detach · Ctrl-P/N switch · Shift-PgUp scroll · Ctrl-L lock",
            theme.fg(Color::DarkGray),
        ));
    }
    frame.render_widget(Line::from(spans), title);
    frame.render_widget(tui_term::widget::PseudoTerminal::new(t.parser.screen()), body);
}

/// The create dialog, over the list.
fn draw_create(frame: &mut Frame, form: &CreateForm, theme: &Theme, area: Rect) {
    let width = area.width.saturating_sub(4).min(96);
    let shown_progress = form.progress.len().min(4) as u16;
    let height = (Field::ALL.len() as u16 + 5 + shown_progress).min(area.height);
    let box_area = centered(area, width, height);
    if let Some(picker) = &form.picker {
        return draw_picker(frame, picker, theme, box_area);
    }
    // The keys of the focused field first: the line is cut at the box's width.
    let field_keys = match form.focus {
        Field::Prompt => "Ctrl-E editor · ",
        Field::Repo => "Ctrl-O browse · ↑/↓ earlier · ",
        Field::Backend | Field::Agent | Field::Access => "←/→ choose · ",
        Field::Plan | Field::SkipPermissions => "Space toggle · ",
        Field::Name | Field::Model | Field::Create => "",
    };
    let block = Block::bordered()
        .title(" New session ")
        .title_bottom(format!(" {field_keys}Tab next · Ctrl-S create · Esc cancel "));
    let inner = block.inner(box_area);
    frame.render_widget(Clear, box_area);
    frame.render_widget(block, box_area);
    let value_width = usize::from(inner.width.saturating_sub(20));
    let bold = theme.paint(Style::new().add_modifier(Modifier::BOLD));
    let mut lines: Vec<Line> = Vec::new();
    for field in Field::ALL {
        let focused = form.focus == field;
        let text_value = |text: &str| {
            // One line: the first of several, and the end of a long one where it is being typed.
            let first = text.lines().next().unwrap_or("");
            let more = text.lines().count().saturating_sub(1);
            let mut shown = one_line(first);
            if more > 0 {
                shown.push_str(&format!("  (+{more} lines)"));
            }
            let chars = shown.chars().count();
            if focused && chars + 1 > value_width {
                shown = shown.chars().skip(chars + 1 - value_width).collect();
            }
            if focused {
                shown.push('█');
            }
            Span::raw(shown)
        };
        let choice = |choices: &[Choice], at: usize| match choices.get(at) {
            None => Span::styled("(asking the daemon…)", theme.fg(Color::DarkGray)),
            Some(c) => match &c.problem {
                None => Span::raw(format!("‹ {} ›", one_line(&c.id))),
                Some(p) => Span::styled(
                    format!("‹ {} ›  cannot run here: {}", one_line(&c.id), one_line(p)),
                    theme.fg(Color::Red),
                ),
            },
        };
        let check = |on: bool| Span::raw(if on { "[x]" } else { "[ ]" });
        let value = match field {
            Field::Prompt => text_value(&form.prompt),
            Field::Repo => text_value(&form.repo),
            Field::Name => {
                if form.name.is_empty() && !focused {
                    Span::styled("(from the prompt)", theme.fg(Color::DarkGray))
                } else {
                    text_value(&form.name)
                }
            }
            Field::Model => {
                if form.model.is_empty() && !focused {
                    Span::styled("(the agent's default)", theme.fg(Color::DarkGray))
                } else {
                    text_value(&form.model)
                }
            }
            Field::Backend => choice(&form.backends, form.backend),
            Field::Agent => choice(&form.agents, form.agent),
            Field::Access => Span::raw(format!("‹ {} ›", form.access.as_str())),
            Field::Plan => check(form.plan),
            Field::SkipPermissions => check(form.skip_permissions),
            Field::Create => Span::raw(""),
        };
        let label_style = if focused { bold.add_modifier(Modifier::REVERSED) } else { bold };
        if field == Field::Create {
            let label = if form.busy { " Creating… " } else { " Create " };
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![Span::raw(" ".repeat(18)), Span::styled(label, label_style)]));
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{:<17}", field.label()), label_style),
            Span::raw(" "),
            value,
        ]));
    }
    let skip = form.progress.len().saturating_sub(4);
    for line in &form.progress[skip..] {
        lines.push(Line::styled(one_line(&format!("  {line}")), theme.fg(Color::Cyan)));
    }
    if let Some(error) = &form.error {
        lines.push(Line::styled(one_line(error), theme.fg(Color::Red).add_modifier(Modifier::BOLD)));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The create dialog's directory browser, in the dialog's box: the directory
/// shown, its directories (git repositories marked), the selection kept on
/// screen.
fn draw_picker(frame: &mut Frame, picker: &Picker, theme: &Theme, box_area: Rect) {
    let hints = " Enter open · ← up · Space use selected · u use this · . hidden · Esc back ";
    let block = Block::bordered().title(" Choose the repository ").title_bottom(hints);
    let inner = block.inner(box_area);
    frame.render_widget(Clear, box_area);
    frame.render_widget(block, box_area);
    let bold = theme.paint(Style::new().add_modifier(Modifier::BOLD));
    let git = |yes: bool| if yes { Span::styled("  git", theme.fg(Color::Green)) } else { Span::raw("") };
    let mut head = vec![Line::from(match &picker.listing {
        Some(l) => vec![Span::styled(one_line(&l.path), bold), git(l.repository)],
        None => vec![Span::styled(
            format!("listing {}…", if picker.asked.is_empty() { "~" } else { &picker.asked }),
            theme.fg(Color::DarkGray),
        )],
    })];
    if let Some(error) = &picker.error {
        head.push(Line::styled(one_line(error), theme.fg(Color::Red).add_modifier(Modifier::BOLD)));
    }
    let mut rows: Vec<Line> = Vec::new();
    let mut selected = 0;
    if let Some(l) = &picker.listing {
        if l.entries.is_empty() {
            rows.push(Line::styled("  No directories here.", theme.fg(Color::DarkGray)));
        }
        for (i, d) in l.entries.iter().enumerate() {
            let name = format!("{} {}/", if i == picker.selected { "▌" } else { " " }, one_line(&d.name));
            let style = if i == picker.selected { bold.add_modifier(Modifier::REVERSED) } else { Style::new() };
            rows.push(Line::from(vec![Span::styled(name, style), git(d.repository)]));
        }
        selected = picker.selected.min(l.entries.len().saturating_sub(1));
        if l.left_out > 0 {
            rows.push(Line::styled(format!("  …and {} more not shown", l.left_out), theme.fg(Color::DarkGray)));
        }
    }
    let [head_area, list_area] =
        Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(head), head_area);
    // Scrolled so the selection is on screen (in the middle once it can be).
    let height = usize::from(list_area.height);
    let top = selected.saturating_sub(height / 2).min(rows.len().saturating_sub(height));
    let shown: Vec<Line> = rows.into_iter().skip(top).take(height).collect();
    frame.render_widget(Paragraph::new(shown), list_area);
}

/// Styles, with colour or (`NO_COLOR`) without: bold, reverse and underline stay.
struct Theme {
    color: bool,
}

impl Theme {
    fn paint(&self, style: Style) -> Style {
        if self.color { style } else { Style { fg: None, bg: None, ..style } }
    }

    fn fg(&self, color: Color) -> Style {
        self.paint(Style::new().fg(color))
    }

    fn status(&self, status: Status) -> Style {
        match status {
            Status::Creating => self.fg(Color::Yellow),
            Status::Running => self.fg(Color::Green),
            Status::Stopped | Status::Archived => self.fg(Color::DarkGray),
            Status::Failed => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    fn agent(&self, status: AgentStatus) -> Style {
        match status {
            AgentStatus::Working => self.fg(Color::Yellow),
            AgentStatus::WaitingForInput => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            AgentStatus::WaitingForApproval => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            AgentStatus::Idle => self.fg(Color::Green),
            AgentStatus::Unknown => self.fg(Color::DarkGray),
        }
    }
}

/// Session text on one line: controls made visible, line breaks as spaces.
fn one_line(text: &str) -> String {
    for_terminal(text).replace(['\n', '\t'], " ")
}

/// How long ago `then_ms` was, in one short word (`now`, `42s`, `5m`, `3h`, `2d`).
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..5 => "now".into(),
        5..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let mut spans = vec![Span::styled(" clauderon ", theme.paint(Style::new().add_modifier(Modifier::BOLD)))];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let count = app.sessions.values().filter(|s| tab.keeps(s)).count();
        // A narrow terminal names only the chosen tab.
        let text = if area.width >= 110 || *tab == app.tab {
            format!(" {} {} {count} ", i + 1, tab.label())
        } else {
            format!(" {}:{count} ", i + 1)
        };
        let style = if *tab == app.tab {
            theme.paint(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        } else {
            Style::new()
        };
        spans.push(Span::styled(text, style));
    }
    let arrow = if app.sort.descending { "↓" } else { "↑" };
    spans.push(Span::styled(format!("  sort: {} {arrow}", app.sort.key.label()), theme.fg(Color::DarkGray)));
    frame.render_widget(Line::from(spans), area);
}

/// The list's columns at this width: the narrower the terminal, the fewer.
/// Names are shown whole (`name_width`, the longest shown) where they fit.
fn columns(width: u16, name_width: u16) -> Vec<(SortKey, Constraint)> {
    let all = [
        (SortKey::Name, Constraint::Min(name_width.clamp(12, 48))),
        (SortKey::Repository, Constraint::Fill(1)),
        (SortKey::Backend, Constraint::Length(8)),
        (SortKey::Agent, Constraint::Length(11)),
        (SortKey::State, Constraint::Length(8)),
        (SortKey::AgentState, Constraint::Length(20)),
        (SortKey::Access, Constraint::Length(10)),
        (SortKey::Age, Constraint::Length(5)),
        (SortKey::LastActivity, Constraint::Length(15)),
    ];
    let drop: &[SortKey] = match width {
        0..70 => &[SortKey::Repository, SortKey::Backend, SortKey::Agent, SortKey::Access, SortKey::Age],
        70..110 => &[SortKey::Repository, SortKey::Age],
        _ => &[],
    };
    all.into_iter().filter(|(k, _)| !drop.contains(k)).collect()
}

fn cell(app: &App, theme: &Theme, s: &Session, key: SortKey) -> Cell<'static> {
    match key {
        SortKey::Name => Cell::from(one_line(&s.name)),
        SortKey::Repository => {
            let repo = s.repo.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let sub = s.subdir.to_string_lossy();
            Cell::from(one_line(&if sub.is_empty() { repo } else { format!("{repo}/{sub}") }))
        }
        SortKey::Backend => Cell::from(one_line(&s.backend)),
        SortKey::Agent => Cell::from(one_line(&s.agent)),
        SortKey::State => Cell::from(kebab(&s.status)).style(theme.status(s.status)),
        SortKey::AgentState => {
            let shown = if s.status == Status::Running { kebab(&s.agent_status) } else { "-".into() };
            Cell::from(shown).style(theme.agent(s.agent_status))
        }
        SortKey::Access => Cell::from(s.access_mode.as_str()),
        SortKey::Age => Cell::from(ago(app.now_ms, s.created_at)),
        SortKey::LastActivity => Cell::from(ago(app.now_ms, s.updated_at)),
    }
}

fn draw_table(frame: &mut Frame, app: &mut App, theme: &Theme, area: Rect) {
    let name_width = app.sessions.values().map(|s| s.name.chars().count()).max().unwrap_or(0) as u16;
    let columns = columns(area.width, name_width);
    // Rows below the header.
    let height = usize::from(area.height.saturating_sub(1)).max(1);
    let (rows, select, offset, pinned): (Vec<Row>, usize, usize, String) = {
        let shown = app.visible();
        if shown.is_empty() {
            let text = match (app.loaded, app.sessions.is_empty(), app.query.is_empty()) {
                (false, _, _) => "Loading sessions…".to_string(),
                (true, true, _) => "No sessions yet. Create one with n (or clauderon create).".into(),
                (true, false, false) => format!("No session under “{}” matches “{}”.", app.tab.label(), app.query),
                (true, false, true) => format!("No session under “{}” (1 shows them all).", app.tab.label()),
            };
            frame.render_widget(Paragraph::new(one_line(&text)).block(Block::new()), area);
            return;
        }
        let select = app.selected.as_ref().and_then(|id| shown.iter().position(|s| &s.id == id)).unwrap_or(0);
        // Scroll as little as keeps the selection on screen.
        let mut offset = app.table.offset().min(shown.len().saturating_sub(height));
        if select < offset {
            offset = select;
        } else if select >= offset + height {
            offset = select + 1 - height;
        }
        // Only the rows on screen are made (a frame of 1,000 sessions costs what one screenful does).
        let rows = shown[offset..shown.len().min(offset + height)]
            .iter()
            .map(|s| Row::new(columns.iter().map(|(key, _)| cell(app, theme, s, *key)).collect::<Vec<_>>()))
            .collect();
        // The selection stays on its session when the list re-sorts or
        // refilters (the first row's session, if the selected one is not shown).
        (rows, select, offset, shown[select].id.clone())
    };
    app.selected = Some(pinned);
    app.table = TableState::default().with_offset(offset).with_selected(Some(select));
    let header = Row::new(columns.iter().map(|(key, _)| {
        let mark = match (app.sort.key == *key, app.sort.descending) {
            (true, true) => " ↓",
            (true, false) => " ↑",
            _ => "",
        };
        Cell::from(format!("{}{mark}", key.label()))
    }))
    .style(theme.paint(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)));
    let table = Table::new(rows, columns.iter().map(|(_, c)| *c))
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▌");
    let mut window = TableState::default().with_selected(Some(select - offset));
    frame.render_stateful_widget(table, area, &mut window);
}

fn draw_detail(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // The list drew first and pinned the selection to a shown session.
    let Some(s) = app
        .selected
        .as_ref()
        .and_then(|id| app.sessions.get(id))
        .filter(|s| app.tab.keeps(s) && crate::list::matches(s, &app.query))
    else {
        return;
    };
    let line = if let (Status::Failed, Some(error)) = (s.status, &s.error) {
        Line::styled(one_line(&format!("{} failed: {error}", s.name)), theme.fg(Color::Red))
    } else if s.isolation == Some(Isolation::None) {
        Line::styled(
            one_line(&format!("{} is unsandboxed: it can read your files and reach your network", s.name)),
            theme.fg(Color::Red),
        )
    } else {
        let model = s.model.as_deref().map(|m| format!(" · model {m}")).unwrap_or_default();
        Line::styled(
            one_line(&format!(
                "{} · {} · branch {} · egress {}{model}",
                s.name,
                s.worktree.display(),
                s.branch,
                s.egress.describe()
            )),
            theme.fg(Color::DarkGray),
        )
    };
    frame.render_widget(line, area);
}

fn draw_status(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    if app.mode == Mode::Search {
        let line = Line::from(vec![Span::raw("/"), Span::raw(one_line(&app.query)), Span::raw("█")]);
        frame.render_widget(line, area);
        return;
    }
    let (dot, state) = match &app.connection {
        Connection::Connecting => (theme.fg(Color::Yellow), "connecting".to_string()),
        Connection::Live => (theme.fg(Color::Green), "live".to_string()),
        Connection::Lost(why) => (theme.fg(Color::Red), format!("daemon unreachable, retrying ({why})")),
    };
    let mut spans = vec![Span::styled("● ", dot), Span::raw(one_line(&state))];
    for (what, n) in app.counts().into_iter().filter(|(_, n)| *n > 0) {
        spans.push(Span::raw(format!(" · {n} {what}")));
    }
    if !app.query.is_empty() {
        spans.push(Span::styled(format!(" · search “{}”", one_line(&app.query)), theme.fg(Color::Cyan)));
    }
    if let Some(m) = &app.message {
        let style = if m.error { theme.fg(Color::Red).add_modifier(Modifier::BOLD) } else { theme.fg(Color::Cyan) };
        spans.push(Span::raw("  "));
        spans.push(Span::styled(one_line(&m.text), style));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_hints(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let hints: &[(&str, &str)] = match app.mode {
        Mode::Search => &[("Enter", "keep"), ("Esc", "clear"), ("↓/↑", "move")],
        _ => &[
            ("?", "help"),
            ("/", "search"),
            ("1-6", "filter"),
            ("n", "new"),
            ("Enter", "attach"),
            ("c", "chat"),
            ("s/S", "stop/start"),
            ("m", "access"),
            ("d", "delete"),
            ("q", "quit"),
        ],
    };
    frame.render_widget(hint_line(theme, hints), area);
}

/// A box of `width` × `height` in the middle of `area` (clamped to it).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn draw_help(frame: &mut Frame, theme: &Theme, area: Rect, keys: &[(&str, &str)]) {
    let key_width = keys.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(10) as u16;
    let what_width = keys.iter().map(|(_, w)| w.chars().count()).max().unwrap_or(40) as u16;
    // Both columns, the space between them, and the borders.
    let box_area = centered(area, key_width + 2 + what_width + 2, keys.len() as u16 + 2);
    let rows = keys.iter().map(|(key, what)| {
        Row::new([Cell::from(*key).style(theme.paint(Style::new().add_modifier(Modifier::BOLD))), Cell::from(*what)])
    });
    let table = Table::new(rows, [Constraint::Length(key_width), Constraint::Fill(1)])
        .column_spacing(2)
        .block(Block::bordered().title(" Keys ").title_bottom(" Esc, ? or q closes "));
    frame.render_widget(Clear, box_area);
    frame.render_widget(table, box_area);
}

/// The chat view: the session's history (newest at the bottom, following it
/// unless scrolled up), a banner while the agent waits for approval, and the
/// message being written.
fn draw_chat(frame: &mut Frame, app: &App, chat: &SessionView, theme: &Theme, area: Rect) {
    let session = app.sessions.get(&chat.id);
    let waiting = session.is_some_and(|s| s.agent_status == AgentStatus::WaitingForApproval);
    let [title, banner, body, status, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(waiting)),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let state = match session {
        Some(s) if s.status == Status::Running => format!("{} · {}", s.agent, kebab(&s.agent_status)),
        Some(s) => format!("{} · {}", s.agent, kebab(&s.status)),
        None => "deleted".into(),
    };
    let style = session.map(|s| theme.agent(s.agent_status)).unwrap_or_default();
    let tab = |pane: Pane, label: &'static str| {
        let style = if chat.pane == pane {
            theme.paint(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
        } else {
            theme.fg(Color::DarkGray)
        };
        Span::styled(label, style)
    };
    frame.render_widget(
        Line::from(vec![
            Span::styled(format!(" {} ", one_line(&chat.name)), theme.paint(Style::new().add_modifier(Modifier::BOLD))),
            Span::styled(one_line(&state), style),
            Span::raw("   "),
            tab(Pane::Chat, " Chat "),
            Span::raw(" "),
            tab(Pane::Audit, " Audit "),
            Span::styled("  (Tab)", theme.fg(Color::DarkGray)),
        ]),
        title,
    );
    if waiting {
        let text =
            format!(" {} is waiting for your approval: y approve · n deny (the chat shows what it asks) ", chat.name);
        let style = theme
            .paint(Style::new().fg(Color::Black).bg(Color::Magenta))
            .add_modifier(Modifier::BOLD | Modifier::REVERSED);
        let style = if app.color { style.remove_modifier(Modifier::REVERSED) } else { style };
        frame.render_widget(Line::styled(one_line(&text), style), banner);
    }
    let lines = match chat.pane {
        Pane::Chat => chat_lines(chat, theme, body.width),
        Pane::Audit => audit_lines(chat, theme),
    };
    let text = if lines.is_empty() {
        let why = match (chat.pane, chat.loaded, chat.transcript) {
            (Pane::Audit, _, _) => "No requests yet: nothing of this session has gone through the proxy.",
            (Pane::Chat, false, _) => "Loading the chat…",
            (Pane::Chat, true, false) => {
                "No chat yet: the agent has not written a transcript (or it keeps none, like the shell agent)."
            }
            (Pane::Chat, true, true) => "The transcript has no messages yet.",
        };
        vec![Line::styled(why, theme.fg(Color::DarkGray))]
    } else {
        lines
    };
    let paragraph = Paragraph::new(text).wrap(Wrap { trim: false });
    // The newest message at the bottom, `scroll` lines up from there.
    let total = paragraph.line_count(body.width) as u16;
    let top = total.saturating_sub(body.height).saturating_sub(chat.scroll);
    frame.render_widget(paragraph.scroll((top, 0)), body);
    draw_status(frame, app, theme, status);
    match &chat.draft {
        Some(draft) => frame.render_widget(
            Line::from(vec![Span::styled("> ", theme.fg(Color::Cyan)), Span::raw(one_line(draft)), Span::raw("█")]),
            bottom,
        ),
        None => {
            let hints = [
                ("Esc", "back"),
                ("Tab", "chat/audit"),
                ("i", "write"),
                ("y/n", "approve/deny"),
                ("t", "tools"),
                ("↑/↓", "scroll"),
                ("?", "help"),
            ];
            frame.render_widget(hint_line(theme, &hints), bottom);
        }
    }
}

/// The chat's messages as lines: each under its role; a tool call and its
/// result on one line each unless unfolded (`t`).
fn chat_lines(chat: &SessionView, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let bold = |color: Color| theme.fg(color).add_modifier(Modifier::BOLD);
    for m in &chat.messages {
        let text = for_terminal(&m.text).replace('\t', "    ");
        let tool = m.tool_name.as_deref().map(one_line).unwrap_or_default();
        let (label, style) = match m.role.as_str() {
            "user" => ("you".to_string(), bold(Color::Cyan)),
            "assistant" => ("agent".to_string(), bold(Color::Green)),
            "tool-use" => (format!("▸ {tool}"), bold(Color::Yellow)),
            "tool-result" if tool.is_empty() => {
                ("◂ result".to_string(), theme.fg(Color::DarkGray).add_modifier(Modifier::BOLD))
            }
            "tool-result" => (format!("◂ {tool} result"), theme.fg(Color::DarkGray).add_modifier(Modifier::BOLD)),
            other => (one_line(other), theme.fg(Color::DarkGray)),
        };
        let is_tool = matches!(m.role.as_str(), "tool-use" | "tool-result");
        if is_tool && !chat.unfold {
            // The whole call on one line, cut to the width.
            let whole = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let room = usize::from(width).saturating_sub(label.chars().count() + 3);
            let shown: String = if whole.chars().count() > room {
                whole.chars().take(room.saturating_sub(1)).chain(['…']).collect()
            } else {
                whole
            };
            lines.push(Line::from(vec![Span::styled(label, style), Span::raw(format!("  {shown}"))]));
            continue;
        }
        lines.push(Line::styled(label, style));
        lines.extend(text.lines().map(|l| Line::raw(format!("  {l}"))));
        lines.push(Line::raw(""));
    }
    lines
}

/// The session's audit records, one line each, oldest first: time (UTC),
/// decision (anything not allowed in red, with its reason), method, host,
/// status, path and the credential injected (by name, never its value).
fn audit_lines(view: &SessionView, theme: &Theme) -> Vec<Line<'static>> {
    view.audit
        .iter()
        .map(|r: &AuditRecord| {
            let secs = r.at_ms / 1000 % 86_400;
            let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
            let (decision, style) = match r.decision {
                Decision::Allowed => ("allowed", theme.fg(Color::Green)),
                Decision::Blocked => ("BLOCKED", theme.fg(Color::Red).add_modifier(Modifier::BOLD)),
                Decision::Denied => ("DENIED", theme.fg(Color::Red).add_modifier(Modifier::BOLD)),
                Decision::Failed => ("failed", theme.fg(Color::Red)),
                Decision::Summary => ("summary", theme.fg(Color::Yellow)),
            };
            let status = r.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let mut spans = vec![
                Span::styled(format!("{time} "), theme.fg(Color::DarkGray)),
                Span::styled(format!("{decision:<8}"), style),
                Span::raw(one_line(&format!(" {:<6} {} {status} {}", r.method, r.host, r.path))),
            ];
            if let Some(credential) = &r.credential {
                spans.push(Span::styled(one_line(&format!("  [{credential}]")), theme.fg(Color::Cyan)));
            }
            if let Some(reason) = &r.reason {
                spans.push(Span::styled(one_line(&format!("  — {reason}")), style));
            }
            Line::from(spans)
        })
        .collect()
}

fn hint_line(theme: &Theme, hints: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key}"), theme.paint(Style::new().add_modifier(Modifier::BOLD))));
        spans.push(Span::styled(format!(" {what} "), theme.fg(Color::DarkGray)));
    }
    Line::from(spans)
}

fn draw_confirm(frame: &mut Frame, theme: &Theme, area: Rect, question: &str) {
    let width = (area.width.saturating_sub(4)).min(64);
    let text = one_line(question);
    // The question wrapped in the box, plus its borders.
    let lines = (text.chars().count() as u16).div_ceil(width.saturating_sub(2).max(1)) + 2;
    let box_area = centered(area, width, lines);
    let block = Block::bordered().title(" Are you sure? ").border_style(theme.fg(Color::Yellow));
    frame.render_widget(Clear, box_area);
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), box_area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AuditRecord, Decision, Update};
    use clauderon_sessions::AccessMode;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    /// 2026-12-05 08:00 UTC: the snapshots' "now".
    const NOW: u64 = 1_796_457_600_000;

    fn session(name: &str, status: Status, agent: AgentStatus, minutes_ago: u64) -> Session {
        Session {
            id: format!("id-{name}"),
            name: name.into(),
            repo: "/home/ada/src/shop".into(),
            worktree: format!("/home/ada/.clauderon/worktrees/{name}").into(),
            branch: format!("clauderon/{name}"),
            backend: "zellij".into(),
            agent: "claude-code".into(),
            status,
            agent_status: agent,
            access_mode: AccessMode::ReadWrite,
            isolation: Some(Isolation::Sandbox),
            created_at: NOW - (minutes_ago + 90) * 60_000,
            updated_at: NOW - minutes_ago * 60_000,
            ..Session::default()
        }
    }

    fn sample() -> App {
        let mut app = App::new(NOW, true);
        let mut failed = session("flaky-tests", Status::Failed, AgentStatus::Unknown, 300);
        failed.error = Some("the backend could not start zellij".into());
        let mut docker = session("payments-api", Status::Running, AgentStatus::WaitingForApproval, 2);
        docker.backend = "docker".into();
        docker.agent = "codex".into();
        docker.access_mode = AccessMode::ReadOnly;
        docker.subdir = "services/payments".into();
        app.update(Update::Loaded(vec![
            session("fix-login", Status::Running, AgentStatus::Working, 0),
            docker,
            session("docs-typos", Status::Running, AgentStatus::Idle, 45),
            session("old-spike", Status::Stopped, AgentStatus::Unknown, 60 * 30),
            failed,
            session("archived-one", Status::Archived, AgentStatus::Unknown, 60 * 24 * 9),
        ]));
        app.connection = Connection::Live;
        app
    }

    fn render(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal.draw(|f| draw(f, app)).expect("draw");
        terminal
    }

    fn press(app: &mut App, code: KeyCode) {
        app.key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    #[test]
    fn the_list_wide() {
        insta::assert_snapshot!(render(&mut sample(), 130, 12).backend());
    }

    #[test]
    fn the_list_narrow_drops_columns() {
        insta::assert_snapshot!(render(&mut sample(), 60, 12).backend());
    }

    #[test]
    fn the_list_filtered_and_searched() {
        let mut app = sample();
        press(&mut app, KeyCode::Char('5'));
        press(&mut app, KeyCode::Char('/'));
        for c in "flaky".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        insta::assert_snapshot!(render(&mut app, 100, 10).backend());
        press(&mut app, KeyCode::Enter);
        insta::assert_snapshot!("the_list_filtered_and_searched_kept", render(&mut app, 100, 10).backend());
    }

    #[test]
    fn help_overlay() {
        let mut app = sample();
        press(&mut app, KeyCode::Char('?'));
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
    }

    #[test]
    fn delete_asks_first() {
        let mut app = sample();
        press(&mut app, KeyCode::Char('d'));
        insta::assert_snapshot!(render(&mut app, 100, 12).backend());
    }

    #[test]
    fn empty_loading_and_lost() {
        let mut app = App::new(NOW, true);
        insta::assert_snapshot!("loading", render(&mut app, 80, 8).backend());
        app.update(Update::Loaded(vec![]));
        app.connection = Connection::Lost("connection refused".into());
        insta::assert_snapshot!("empty_and_lost", render(&mut app, 80, 8).backend());
    }

    #[test]
    fn a_tiny_terminal_gets_a_sentence() {
        insta::assert_snapshot!(render(&mut sample(), 30, 6).backend());
    }

    #[test]
    fn states_have_colours_unless_no_color() {
        let mut app = sample();
        let terminal = render(&mut app, 130, 12);
        let buffer = terminal.backend().buffer();
        let find = |text: &str| -> Style {
            let area = buffer.area;
            for y in 0..area.height {
                let line: String = (0..area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
                if let Some(at) = line.find(text) {
                    let x = line[..at].chars().count() as u16;
                    return buffer[(x, y)].style();
                }
            }
            panic!("{text} is not on the screen");
        };
        assert_eq!(find("waiting-for-approval").fg, Some(Color::Magenta));
        assert_eq!(find("failed   -").fg, Some(Color::Red));
        assert_eq!(find("working").fg, Some(Color::Yellow));
        app.color = false;
        let terminal = render(&mut app, 130, 12);
        let buffer = terminal.backend().buffer();
        assert!(
            buffer.content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "NO_COLOR draws no colour"
        );
    }

    #[test]
    fn control_sequences_in_session_text_are_shown_not_obeyed() {
        let mut app = sample();
        let mut hostile = session("hostile", Status::Failed, AgentStatus::Unknown, 0);
        hostile.error = Some("\x1b]52;c;cHduZWQ=\x07\x1b[2J boom\nnext".into());
        hostile.updated_at = NOW + 1;
        app.update(Update::Session(Box::new(hostile)));
        let terminal = render(&mut app, 130, 12);
        let screen = terminal.backend().to_string();
        assert!(screen.contains("^[]52;c;cHduZWQ=^G^[[2J boom next"), "{screen}");
        assert!(!terminal.backend().buffer().content().iter().any(|c| c.symbol().chars().any(char::is_control)));
    }

    fn chat_app() -> App {
        let mut app = sample();
        // payments-api waits for approval; open its chat.
        app.selected = Some("id-payments-api".into());
        assert_eq!(
            app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(crate::app::Action::Follow { id: "id-payments-api".into() })
        );
        let line = |role: &str, text: &str, tool: Option<&str>| crate::app::ChatLine {
            role: role.into(),
            text: text.into(),
            tool_name: tool.map(String::from),
        };
        app.update(Update::History {
            id: "id-payments-api".into(),
            messages: vec![
                line("user", "Run make test", None),
                line("assistant", "I'll run the tests.", None),
                line("tool-use", "{\"command\": \"make test\",\n \"description\": \"Run the tests\"}", Some("Bash")),
                line("tool-result", "ok 1 - login\nok 2 - logout\nok 3 - payments", Some("Bash")),
                line("assistant", "All three tests pass.", None),
            ],
            cursor: 420,
            transcript: true,
        });
        app
    }

    #[test]
    fn chat_with_an_approval_waiting() {
        insta::assert_snapshot!(render(&mut chat_app(), 100, 16).backend());
    }

    #[test]
    fn chat_unfolded_and_writing() {
        let mut app = chat_app();
        press(&mut app, KeyCode::Char('t'));
        press(&mut app, KeyCode::Char('i'));
        for c in "Now fix the flaky one".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        insta::assert_snapshot!(render(&mut app, 100, 20).backend());
        let sent = app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(
            sent,
            Some(crate::app::Action::Call(crate::app::Call::Type {
                id: "id-payments-api".into(),
                name: "payments-api".into(),
                text: "Now fix the flaky one".into()
            }))
        );
    }

    #[test]
    fn chat_keys_approve_only_a_waiting_agent_and_esc_goes_back() {
        let mut app = chat_app();
        let approve = app.key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE));
        assert!(matches!(
            approve,
            Some(crate::app::Action::Call(crate::app::Call::Answer { answer: clauderon_api::Answer::Approve, .. }))
        ));
        app.sessions.get_mut("id-payments-api").expect("session").agent_status = AgentStatus::Working;
        assert_eq!(app.key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)), None);
        assert!(
            app.message
                .as_ref()
                .is_some_and(|m| m.error && m.text.contains("not waiting for approval (its agent is working)"))
        );
        // History of another session (a chat closed and reopened) is not mixed in.
        app.update(Update::History { id: "id-fix-login".into(), messages: vec![], cursor: 9999, transcript: true });
        assert_eq!(app.session.as_ref().map(|c| c.cursor), Some(420));
        assert_eq!(app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)), Some(crate::app::Action::Unfollow));
        assert!(app.session.is_none());
    }

    #[test]
    fn the_audit_pane_marks_what_was_refused() {
        let mut app = chat_app();
        let record = |seq: u64, host: &str, path: &str, decision: Decision, status: Option<u16>| AuditRecord {
            seq,
            at_ms: NOW + seq * 1000,
            session_id: "id-payments-api".into(),
            session_name: "payments-api".into(),
            host: host.into(),
            method: "GET".into(),
            path: path.into(),
            decision,
            reason: (decision == Decision::Blocked)
                .then(|| "`evil.example` is not on this session's egress allow-list".to_string()),
            credential: (host == "api.github.com").then(|| "github".to_string()),
            status,
            duration_ms: 12.5,
            bytes_up: 0,
            bytes_down: 10,
        };
        app.update(Update::Audit {
            id: "id-payments-api".into(),
            records: vec![
                record(1, "api.github.com", "/repos/shop/pulls", Decision::Allowed, Some(200)),
                record(2, "evil.example", "/upload", Decision::Blocked, None),
            ],
        });
        // A page that repeats a record (a retry) adds nothing twice.
        app.update(Update::Audit {
            id: "id-payments-api".into(),
            records: vec![record(2, "evil.example", "/upload", Decision::Blocked, None)],
        });
        press(&mut app, KeyCode::Tab);
        insta::assert_snapshot!(render(&mut app, 110, 8).backend());
    }

    #[test]
    fn a_long_list_scrolls_to_keep_the_selection_on_screen() {
        let mut app = App::new(NOW, true);
        let many = (0..300).map(|i| session(&format!("s-{i:03}"), Status::Running, AgentStatus::Idle, i)).collect();
        app.update(Update::Loaded(many));
        let screen = render(&mut app, 100, 12).backend().to_string();
        assert!(screen.contains("s-000") && !screen.contains("s-299"), "{screen}");
        press(&mut app, KeyCode::End);
        let screen = render(&mut app, 100, 12).backend().to_string();
        assert!(screen.contains("▌s-299") && !screen.contains("s-000"), "{screen}");
        // Up one: the screen does not move; Home: back to the top.
        press(&mut app, KeyCode::Up);
        let screen = render(&mut app, 100, 12).backend().to_string();
        assert!(screen.contains("▌s-298") && screen.contains("s-299"), "{screen}");
        press(&mut app, KeyCode::Home);
        let screen = render(&mut app, 100, 12).backend().to_string();
        assert!(screen.contains("▌s-000"), "{screen}");
    }

    #[test]
    fn the_create_dialog() {
        let mut app = sample();
        assert_eq!(
            app.key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)),
            Some(crate::app::Action::OpenCreate)
        );
        app.update(Update::Doctor(Box::new(crate::create::test_doctor())));
        for c in "Fix the flaky payments test".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        press(&mut app, KeyCode::Tab);
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
        // The backend that cannot run here says why; a failed create keeps the form with the API's words.
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Right);
        app.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
        app.update(Update::Progress("pulling the session image: 40%".into()));
        app.update(Update::Created(Err("no Docker engine answers at /var/run/docker.sock".into())));
        insta::assert_snapshot!("the_create_dialog_failed", render(&mut app, 100, 24).backend());
        assert!(app.create.as_ref().is_some_and(|f| !f.busy && f.prompt == "Fix the flaky payments test"));
    }

    #[test]
    fn the_embedded_terminal() {
        let mut app = sample();
        app.attached = Some(Attached::new("id-fix-login".into(), "fix-login".into(), 11, 72));
        let mut out: Vec<u8> = (1..=30).flat_map(|i| format!("line {i}\r\n").into_bytes()).collect();
        out.extend_from_slice(b"\x1b[1;32mok\x1b[0m $ ");
        app.update(Update::Output { id: "id-fix-login".into(), bytes: out });
        // Output of another session (one attached before) is not drawn here.
        app.update(Update::Output { id: "id-docs-site".into(), bytes: b"not this".to_vec() });
        insta::assert_snapshot!(render(&mut app, 72, 12).backend());
        app.key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::SHIFT));
        app.key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL));
        insta::assert_snapshot!("the_embedded_terminal_scrolled_and_locked", render(&mut app, 72, 12).backend());
        app.update(Update::Ended { id: "id-fix-login".into(), why: "the session stopped".into() });
        let screen = render(&mut app, 72, 12).backend().to_string();
        assert!(screen.contains("the session stopped; any key goes back"), "{screen}");
    }

    #[test]
    fn the_directory_browser() {
        let mut app = sample();
        app.key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE));
        press(&mut app, KeyCode::Tab);
        let browse = app.key(KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL));
        let Some(crate::app::Action::Browse { path, .. }) = browse else { panic!("Ctrl-O browses: {browse:?}") };
        let dir = |name: &str, repository: bool| clauderon_api::directories::Directory {
            name: name.into(),
            path: format!("/home/ada/src/{name}"),
            repository,
        };
        let mut entries = vec![dir("blog", true), dir("notes", false), dir("shop\x1b[2J", true)];
        entries.extend((0..20).map(|i| dir(&format!("z{i:02}"), false)));
        let listing = clauderon_api::directories::Listing {
            path: "/home/ada/src".into(),
            parent: Some("/home/ada".into()),
            home: "/home/ada".into(),
            repository: false,
            entries,
            left_out: 7,
        };
        app.update(Update::Directories { asked: path, listing: Ok(Box::new(listing)) });
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        // A name's control characters are shown; the selection is on screen.
        insta::assert_snapshot!(render(&mut app, 100, 24).backend());
        press(&mut app, KeyCode::End);
        let screen = render(&mut app, 100, 24).backend().to_string();
        assert!(screen.contains("▌ z19/") && screen.contains("…and 7 more not shown"), "{screen}");
        press(&mut app, KeyCode::Char(' '));
        assert_eq!(app.create.as_ref().map(|f| f.repo.as_str()), Some("/home/ada/src/z19"));
    }

    #[test]
    fn a_hostile_transcript_is_shown_not_obeyed() {
        let mut app = chat_app();
        let evil = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b[31mred\u{9b}0m\r";
        app.update(Update::History {
            id: "id-payments-api".into(),
            messages: vec![crate::app::ChatLine {
                role: "assistant\x1b[5m".into(),
                text: evil.into(),
                tool_name: None,
            }],
            cursor: 500,
            transcript: true,
        });
        let terminal = render(&mut app, 100, 16);
        let screen = terminal.backend().to_string();
        assert!(screen.contains("^[]52;c;cHduZWQ=^G^[[2J^[[31mred\\u{9b}0m^M"), "{screen}");
        assert!(screen.contains("assistant^[[5m"), "{screen}");
        assert!(!terminal.backend().buffer().content().iter().any(|c| c.symbol().chars().any(char::is_control)));
    }

    #[test]
    fn ages_read_short() {
        assert_eq!(ago(NOW, NOW - 1000), "now");
        assert_eq!(ago(NOW, NOW - 42_000), "42s");
        assert_eq!(ago(NOW, NOW - 5 * 60_000), "5m");
        assert_eq!(ago(NOW, NOW - 3 * 3_600_000), "3h");
        assert_eq!(ago(NOW, NOW - 49 * 3_600_000), "2d");
        assert_eq!(ago(NOW, NOW + 10_000), "now", "a clock a little ahead is not negative");
    }
}
