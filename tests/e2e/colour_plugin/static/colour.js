// The browser half of the test plugin's scene type: swatches that submit a colour.
export function register(api) {
  api.registerScene("colour_pick", (ctx) => {
    const heading = api.h("h2", {}, ctx.scene.prompt);
    const row = api.h("div", { class: "colour-row", role: "group", "aria-label": ctx.scene.prompt });
    for (const colour of ctx.scene.colours) {
      const button = api.h("button", { type: "button", "data-colour": colour }, colour);
      button.style.background = colour;
      button.style.color = "white";
      button.style.padding = "1.5rem 2.5rem";
      button.style.margin = "0.5rem";
      button.style.fontSize = "1.25rem";
      button.addEventListener("click", async () => {
        const result = await ctx.submit({ colour });
        if (!result.ok) row.append(api.h("p", { role: "alert" }, result.errors.colour || result.message));
      });
      row.append(button);
    }
    ctx.root.append(heading, row);
  });
}
