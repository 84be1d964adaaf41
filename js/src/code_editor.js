// The review widget's code editor (agent_magic.ui.widget.CodeEditor): CodeMirror 6 with
// Python highlighting, line numbers and Tab / Shift-Tab indenting, in an anywidget view.
//
// Two things it keeps from the plain text box it replaces (text_box.js):
// * keys typed in it stay in it: the editor carries data-lm-suppress-shortcuts and stops
//   keydown from bubbling, so JupyterLab / Notebook 7 never act on them (Shift+Enter
//   would otherwise run the %%agent cell again; Enter would enter edit mode...);
// * every edit goes to the kernel as a message of its own, in order, so a click on Run
//   right after typing never overtakes the text (a throttled state sync could).
//
// Built into agent_magic/ui/code_editor.js by `npm ci && npm run build` in js/.
import { defaultKeymap, history, historyKeymap, indentLess, indentMore } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import {
  bracketMatching,
  HighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { Compartment, EditorSelection, EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { tags as t } from "@lezer/highlight";

const INDENT = "    ";

// Tab: with nothing selected, spaces up to the next indent stop at the cursor (as
// JupyterLab does); with a selection, indent the selected lines. Shift-Tab dedents.
function tab(view) {
  const { state } = view;
  if (state.selection.ranges.some((r) => !r.empty)) return indentMore(view);
  view.dispatch(
    state.changeByRange((range) => {
      const line = state.doc.lineAt(range.head);
      const column = range.head - line.from;
      const spaces = INDENT.length - (column % INDENT.length);
      const insert = " ".repeat(spaces);
      return {
        changes: { from: range.head, insert },
        range: EditorSelection.cursor(range.head + spaces),
      };
    }),
  );
  return true;
}

// JupyterLab's and Notebook 7's own editor colours (their CSS variables), with fallbacks
// for frontends without them, so the code reads like a notebook cell in light and dark.
const v = (name, fallback) => `var(--jp-mirror-editor-${name}-color, ${fallback})`;
const highlight = HighlightStyle.define([
  { tag: t.keyword, color: v("keyword", "#008000"), fontWeight: "bold" },
  { tag: [t.definitionKeyword, t.moduleKeyword, t.controlKeyword], color: v("keyword", "#008000"), fontWeight: "bold" },
  { tag: [t.operator, t.operatorKeyword], color: v("operator", "#aa22ff"), fontWeight: "bold" },
  { tag: [t.number, t.bool, t.null], color: v("number", "#080") },
  { tag: [t.string, t.special(t.string)], color: v("string", "#ba2121") },
  { tag: t.comment, color: v("comment", "#408080"), fontStyle: "italic" },
  { tag: [t.function(t.definition(t.variableName)), t.definition(t.className)], color: v("def", "#00f") },
  { tag: t.definition(t.variableName), color: v("variable", "#212121") },
  { tag: [t.standard(t.variableName), t.self], color: v("builtin", "#008000") },
  { tag: t.propertyName, color: v("property", "#05a") },
  { tag: [t.punctuation, t.bracket], color: v("punctuation", "#05a") },
  { tag: t.meta, color: v("meta", "#aa22ff") },
  { tag: t.invalid, color: v("error", "#f00") },
]);

const theme = EditorView.theme({
  "&": {
    border: "1px solid var(--jp-border-color1, #bdbdbd)",
    borderRadius: "2px",
    backgroundColor: "var(--jp-cell-editor-background, #f7f7f7)",
    color: "var(--jp-content-font-color1, #212121)",
    fontSize: "var(--jp-code-font-size, 13px)",
  },
  "&.cm-focused": {
    outline: "1px solid var(--jp-cell-editor-active-border-color, var(--jp-brand-color1, #1976d2))",
  },
  ".cm-scroller": {
    fontFamily: "var(--jp-code-font-family, monospace)",
    lineHeight: "var(--jp-code-line-height, 1.39)",
    overflow: "auto",
    maxHeight: "32em",
  },
  ".cm-content": { caretColor: "var(--jp-editor-cursor-color, #000)", padding: "4px 0" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--jp-editor-cursor-color, #000)" },
  ".cm-gutters": {
    backgroundColor: "var(--jp-cell-editor-background, #f7f7f7)",
    color: "var(--jp-ui-font-color2, #757575)",
    borderRight: "1px solid var(--jp-border-color2, #e0e0e0)",
  },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "var(--jp-editor-selected-focused-background, #d9d9d9)",
  },
  "&.agent-readonly": { opacity: "0.85" },
});

// Beyond CodeMirror's own special characters: every bidi control, the zero-width ones,
// line and paragraph separators, and the Hangul fillers that draw as blanks.
const INVISIBLE = /[\u061c\u115f\u1160\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0]/;

function render({ model, el }) {
  const editable = new Compartment();
  const editableState = (disabled) => [
    EditorView.editable.of(!disabled),
    EditorState.readOnly.of(disabled),
    EditorView.editorAttributes.of({ class: disabled ? "agent-readonly" : "" }),
  ];
  const language = model.get("language") === "python" ? [python()] : [];
  const view = new EditorView({
    parent: el,
    state: EditorState.create({
      doc: model.get("text"),
      extensions: [
        lineNumbers(),
        // Bidi controls and invisible characters drawn as a marked placeholder (their
        // code point on hover), so the code reads as it runs (agent_magic/invisible.py).
        highlightSpecialChars({ addSpecialChars: INVISIBLE }),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        EditorState.tabSize.of(4),
        indentUnit.of(INDENT),
        EditorState.allowMultipleSelections.of(false),
        syntaxHighlighting(highlight),
        language,
        keymap.of([
          { key: "Tab", run: tab, shift: indentLess },
          ...defaultKeymap,
          ...historyKeymap,
        ]),
        EditorView.contentAttributes.of({
          "aria-label": model.get("label") || "Code",
          spellcheck: "false",
          autocorrect: "off",
          autocapitalize: "off",
        }),
        theme,
        editable.of(editableState(model.get("disabled"))),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) return;
          const value = update.state.doc.toString();
          model.send({ value });
          // Kept in this page's model only (never synced back, which would race the
          // typing), so this box drawn again (or another view of it) shows the edit.
          model.set("text", value);
        }),
      ],
    }),
  });
  el.classList.add("agent-editor");
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const onKeydown = (event) => {
    if (event.key === "Escape") {
      view.contentDOM.blur(); // and let the notebook have it (back to command mode)
      return;
    }
    // The notebook listens on the document in the bubbling phase: it must not see
    // Enter, Shift+Enter, or A/B/X/D... typed here as commands.
    event.stopPropagation();
  };
  el.addEventListener("keydown", onKeydown);
  const onDisabled = () =>
    view.dispatch({ effects: editable.reconfigure(editableState(model.get("disabled"))) });
  model.on("change:disabled", onDisabled);
  return () => {
    model.off("change:disabled", onDisabled);
    el.removeEventListener("keydown", onKeydown);
    view.destroy();
  };
}

export default { render };
