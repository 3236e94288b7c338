//! The embedded terminal (`Enter`): a session's terminal inside the TUI,
//! over the console WebSocket (`GET /api/sessions/{id}/console`, the same
//! attach the web dashboard's terminal uses), parsed by `vt100` with 10,000
//! lines of scrollback and drawn by `tui-term`. This module is its state and
//! what each key sends; `lib.rs` owns the socket.
//!
//! Keys: everything goes to the session, except Ctrl-Q (detach), Ctrl-P /
//! Ctrl-N (previous / next session), Shift-PgUp / Shift-PgDn (scroll back)
//! and Ctrl-L (lock: then every key but Ctrl-L goes to the session).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Lines of scrollback kept per attached terminal.
pub const SCROLLBACK: usize = 10_000;

/// Every key of the embedded terminal that is not the session's.
pub const ATTACHED_KEYS: &[(&str, &str)] = &[
    ("Ctrl-Q", "detach (the session keeps running)"),
    ("Ctrl-P / Ctrl-N", "previous / next session of the list, attached"),
    ("Shift-PgUp / Shift-PgDn", "scroll back / forward (10,000 lines)"),
    ("Ctrl-L", "lock: every key goes to the session, Ctrl-Q too (zellij's quit); Ctrl-L unlocks"),
];

/// A session's terminal, attached.
pub struct Attached {
    pub id: String,
    pub name: String,
    pub parser: vt100::Parser,
    /// Every key goes to the session (but Ctrl-L).
    pub locked: bool,
    /// Why the attach ended, once it has.
    pub ended: Option<String>,
}

/// What a key in the embedded terminal asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachedKey {
    /// Bytes for the session's terminal.
    Send(Vec<u8>),
    Detach,
    /// Attach the previous (-1) or next (1) session of the list instead.
    Switch(isize),
    /// Handled here (scroll, lock); nothing to send.
    Done,
}

impl Attached {
    pub fn new(id: String, name: String, rows: u16, cols: u16) -> Self {
        Self { id, name, parser: vt100::Parser::new(rows, cols, SCROLLBACK), locked: false, ended: None }
    }

    /// A key pressed while attached.
    pub fn key(&mut self, key: KeyEvent) -> AttachedKey {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        if ctrl && key.code == KeyCode::Char('l') {
            self.locked = !self.locked;
            return AttachedKey::Done;
        }
        if self.ended.is_some() {
            return AttachedKey::Detach;
        }
        if !self.locked {
            match key.code {
                KeyCode::Char('q') if ctrl => return AttachedKey::Detach,
                KeyCode::Char('p') if ctrl => return AttachedKey::Switch(-1),
                KeyCode::Char('n') if ctrl => return AttachedKey::Switch(1),
                KeyCode::PageUp | KeyCode::PageDown if shift => {
                    let page = usize::from(self.parser.screen().size().0.max(2) - 1);
                    let now = self.parser.screen().scrollback();
                    let to = if key.code == KeyCode::PageUp { now + page } else { now.saturating_sub(page) };
                    self.parser.screen_mut().set_scrollback(to);
                    return AttachedKey::Done;
                }
                _ => {}
            }
        }
        match bytes(key) {
            Some(b) => {
                // Typing brings the view back to the live screen.
                self.parser.screen_mut().set_scrollback(0);
                AttachedKey::Send(b)
            }
            None => AttachedKey::Done,
        }
    }
}

/// The bytes a terminal sends for `key` (xterm's encoding).
pub fn bytes(key: KeyEvent) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let mut out = match key.code {
        KeyCode::Char(c) if ctrl && c.is_ascii_alphabetic() => vec![(c.to_ascii_lowercase() as u8) & 0x1f],
        KeyCode::Char(' ') if ctrl => vec![0],
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => vec![b'\r'],
        KeyCode::Tab => vec![b'\t'],
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        KeyCode::Home => b"\x1b[H".to_vec(),
        KeyCode::End => b"\x1b[F".to_vec(),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        KeyCode::F(n @ 1..=4) => format!("\x1bO{}", (b'P' + n - 1) as char).into_bytes(),
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            format!("\x1b[{code}~").into_bytes()
        }
        _ => return None,
    };
    if alt {
        out.insert(0, 0x1b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_become_the_bytes_a_terminal_sends() {
        assert_eq!(bytes(press(KeyCode::Char('a'), KeyModifiers::NONE)), Some(b"a".to_vec()));
        assert_eq!(bytes(press(KeyCode::Char('é'), KeyModifiers::NONE)), Some("é".as_bytes().to_vec()));
        assert_eq!(bytes(press(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(vec![3]));
        assert_eq!(bytes(press(KeyCode::Char('x'), KeyModifiers::ALT)), Some(b"\x1bx".to_vec()));
        assert_eq!(bytes(press(KeyCode::Enter, KeyModifiers::NONE)), Some(b"\r".to_vec()));
        assert_eq!(bytes(press(KeyCode::Up, KeyModifiers::NONE)), Some(b"\x1b[A".to_vec()));
        assert_eq!(bytes(press(KeyCode::F(1), KeyModifiers::NONE)), Some(b"\x1bOP".to_vec()));
        assert_eq!(bytes(press(KeyCode::F(12), KeyModifiers::NONE)), Some(b"\x1b[24~".to_vec()));
    }

    #[test]
    fn ctrl_q_detaches_unless_locked_and_scrollback_keeps_10000_lines() {
        let mut t = Attached::new("id".into(), "s".into(), 5, 20);
        for i in 0..12_000 {
            t.parser.process(format!("line {i}\r\n").as_bytes());
        }
        t.key(press(KeyCode::PageUp, KeyModifiers::SHIFT));
        assert_eq!(t.parser.screen().scrollback(), 4);
        t.parser.screen_mut().set_scrollback(usize::MAX);
        assert_eq!(t.parser.screen().scrollback(), SCROLLBACK, "10,000 lines are kept");
        assert_eq!(t.key(press(KeyCode::Char('x'), KeyModifiers::NONE)), AttachedKey::Send(b"x".to_vec()));
        assert_eq!(t.parser.screen().scrollback(), 0, "typing goes back to the live screen");
        assert_eq!(t.key(press(KeyCode::Char('q'), KeyModifiers::CONTROL)), AttachedKey::Detach);
        assert_eq!(t.key(press(KeyCode::Char('n'), KeyModifiers::CONTROL)), AttachedKey::Switch(1));
        t.key(press(KeyCode::Char('l'), KeyModifiers::CONTROL));
        assert!(t.locked);
        assert_eq!(t.key(press(KeyCode::Char('q'), KeyModifiers::CONTROL)), AttachedKey::Send(vec![0x11]));
        assert_eq!(t.key(press(KeyCode::Char('n'), KeyModifiers::CONTROL)), AttachedKey::Send(vec![0x0e]));
        t.key(press(KeyCode::Char('l'), KeyModifiers::CONTROL));
        assert_eq!(t.key(press(KeyCode::Char('q'), KeyModifiers::CONTROL)), AttachedKey::Detach);
        t.ended = Some("the attach command ended".into());
        assert_eq!(
            t.key(press(KeyCode::Char('a'), KeyModifiers::NONE)),
            AttachedKey::Detach,
            "any key leaves an ended attach"
        );
    }
}
