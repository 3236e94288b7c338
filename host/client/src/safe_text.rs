//! Text that comes from sessions (an agent's chat, paths and hosts it
//! requested) made safe to print on the user's terminal: a terminal control
//! sequence in it could otherwise clear the screen, retitle the window,
//! rewrite earlier lines or write the clipboard (OSC 52). Every C0 control
//! but newline and tab, DEL and every C1 control is shown visibly instead:
//! `^[` for ESC, `^X` for the others below space, `^?` for DEL, `\u{9b}` for C1.

/// `text` with every control character made visible.
pub fn for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{0}'..='\u{1f}' => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A JSON line that is safe on a terminal too: serde_json escapes C0
/// controls already; C1 controls, valid in JSON strings, are escaped here.
pub fn json_line(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{80}'..='\u{9f}' | '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible() {
        let clipboard = "\x1b]52;c;ZWNobyBwd25lZA==\x07";
        assert_eq!(for_terminal(clipboard), "^[]52;c;ZWNobyBwd25lZA==^G");
        assert_eq!(for_terminal("\x1b[2J\x1b[H"), "^[[2J^[[H");
        assert_eq!(for_terminal("a\u{9b}31mb\x7f\r"), "a\\u{9b}31mb^?^M");
        assert_eq!(for_terminal("line 1\n\tline 2 — ünïcödé ✓"), "line 1\n\tline 2 — ünïcödé ✓");
        assert!(!for_terminal(clipboard).contains('\x1b'));
    }

    #[test]
    fn json_lines_carry_no_raw_control_characters() {
        let v = serde_json::json!({ "text": "x\x1b[31m\u{9b}y" });
        let line = json_line(&v);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).expect("still JSON"), v);
    }
}
