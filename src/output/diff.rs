//! The one unified diff (`build --check`, `apply --dry-run`, `revert
//! --dry-run`): `similar`'s line diff with three lines of context, the way
//! `diff -u` and git show it.

/// A unified diff from `old` (named `old_name`, `/dev/null` for a file
/// that does not exist yet) to `new` (named `new_name`). Empty when equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_shown_with_context_and_headers() {
        let d = unified("a\nb\nc\n", "a\nB\nc\n", "a/f", "b/f");
        assert_eq!(d, "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(unified("x\n", "x\n", "a", "b"), "");
    }
}
