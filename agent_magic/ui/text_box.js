// The review widget's feedback box (agent_magic.ui.widget.TextBox): a textarea whose keys
// stay in it (data-lm-suppress-shortcuts: JupyterLab / Notebook 7 shortcuts such as
// Shift+Enter "run cell" ignore it) and whose every edit goes to the kernel as an
// ordered message, so a click right after typing never overtakes the text.
// Hand-written and loaded as it is; the code editor is the bundle code_editor.js.
function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "widget-textarea-input";
  area.spellcheck = true;
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  Object.assign(area.style, {
    width: "100%",
    boxSizing: "border-box",
    fontFamily: "inherit",
    fontSize: "inherit",
    lineHeight: "1.4",
    padding: "4px 6px",
    resize: "vertical",
  });
  area.value = model.get("text");
  const show = () => {
    area.rows = model.get("rows");
    area.disabled = model.get("disabled");
    area.placeholder = model.get("placeholder");
    area.setAttribute("aria-label", model.get("label") || model.get("placeholder"));
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
      area.blur(); // and let the notebook have it (back to command mode)
      return;
    }
    // Keys typed here are for the box: the notebook (which listens on the document,
    // in the bubbling phase) must not see Enter, Shift+Enter, or A/B/X/D... as commands.
    event.stopPropagation();
  });
  const names = ["rows", "disabled", "placeholder", "label"];
  for (const name of names) model.on(`change:${name}`, show);
  el.appendChild(area);
  return () => {
    for (const name of names) model.off(`change:${name}`, show);
  };
}
export default { render };
