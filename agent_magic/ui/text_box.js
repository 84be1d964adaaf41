// The review widget's text boxes (agent_magic.ui.widget.TextBox): a textarea whose keys
// stay in it (data-lm-suppress-shortcuts: JupyterLab / Notebook 7 shortcuts such as
// Shift+Enter "run cell" ignore it) and whose every edit goes to the kernel as an
// ordered message, so a click right after typing never overtakes the text.
function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "widget-textarea-input";
  area.spellcheck = false;
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  const code = model.get("code");
  Object.assign(area.style, {
    width: "100%",
    boxSizing: "border-box",
    fontFamily: code ? "var(--jp-code-font-family, monospace)" : "inherit",
    fontSize: code ? "var(--jp-code-font-size, 13px)" : "inherit",
    lineHeight: "1.4",
    padding: "4px 6px",
    resize: "vertical",
    tabSize: "4",
  });
  area.value = model.get("text");
  const show = () => {
    area.rows = model.get("rows");
    area.disabled = model.get("disabled");
    area.placeholder = model.get("placeholder");
  };
  show();
  area.addEventListener("input", () => {
    model.send({ value: area.value });
    // Kept in this page's model only (never synced back, which would race the typing),
    // so another view of the same box, or this one drawn again, shows the edit.
    model.set("text", area.value);
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      area.blur();  // and let the notebook have it (back to command mode)
      return;
    }
    // Keys typed here are for the box: the notebook (which listens on the document,
    // in the bubbling phase) must not see Enter, Shift+Enter, or A/B/X/D... as commands.
    event.stopPropagation();
    if (code && event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();  // indent; Esc then Tab leaves the box
      area.setRangeText("    ", area.selectionStart, area.selectionEnd, "end");
      area.dispatchEvent(new Event("input"));
    }
  });
  for (const name of ["rows", "disabled", "placeholder"]) model.on(`change:${name}`, show);
  el.appendChild(area);
  return () => {
    for (const name of ["rows", "disabled", "placeholder"]) model.off(`change:${name}`, show);
  };
}
export default { render };
