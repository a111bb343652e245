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
