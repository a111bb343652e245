// The portal's only script besides htmx. No inline handlers anywhere (the Content-Security-Policy
// refuses them): behaviour hangs off data- attributes here.

// <form data-confirm="Question?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// A long-polled element (data-live-poll) re-asks itself after a failed request (a restart, a dropped
// connection): htmx would otherwise stop, leaving the page frozen until a reload.
for (const failure of ["htmx:sendError", "htmx:responseError", "htmx:timeout"]) {
  document.addEventListener(failure, (event) => {
    const element = event.detail && event.detail.elt;
    if (!element || !element.hasAttribute || !element.hasAttribute("data-live-poll")) return;
    const url = element.getAttribute("hx-get");
    window.setTimeout(() => {
      if (document.body.contains(element)) {
        window.htmx.ajax("GET", url, { source: element, target: element, swap: "outerHTML" });
      }
    }, 1000);
  });
}

// A long poll whose wait ran out with nothing new answers 204 (nothing to swap, nothing rendered): ask again.
document.addEventListener("htmx:afterRequest", (event) => {
  const element = event.detail && event.detail.elt;
  const xhr = event.detail && event.detail.xhr;
  if (!element || !xhr || xhr.status !== 204 || !element.hasAttribute || !element.hasAttribute("data-live-poll")) return;
  if (document.body.contains(element)) {
    window.htmx.ajax("GET", element.getAttribute("hx-get"), { source: element, target: element, swap: "outerHTML" });
  }
});

// The run picker: "Use accuracy = 0.93" fills the registration form's model URI and metric, and shows the
// run's value beside the baseline (the baseline itself stays the developer's to set).
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("[data-fill-model-uri]");
  if (!button) return;
  const form = document.getElementById("registration-form");
  if (!form) return;
  form.elements.model_uri.value = button.dataset.fillModelUri;
  if (button.dataset.fillMetric) {
    form.elements.metric_name.value = button.dataset.fillMetric;
    document.getElementById("run-metric-hint").textContent =
      `The run's ${button.dataset.fillMetric}: ${button.dataset.fillValue}. Set the baseline your model is measured against.`;
  }
  form.elements.model_uri.focus();
});
