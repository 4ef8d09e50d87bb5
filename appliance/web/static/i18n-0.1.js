// The browser scripts' side of the UI's languages. /i18n/<language>-<digest>.js (loaded just before this
// file) sets window.SOTTO_I18N to this page's language and its messages; scripts call
//   const { t } = window.SottoI18n;   t("Saved {time}", { time })
// with the English text as the key, as gettext does (scripts/i18n-update finds every t("...") call).
// A message without a translation shows the English; {name} placeholders are filled in after lookup.
(function () {
  "use strict";
  const data = window.SOTTO_I18N || { lang: "en", dir: "ltr", messages: {} };
  const lang = data.lang || "en";

  function t(message, values) {
    const text = Object.prototype.hasOwnProperty.call(data.messages, message) ? data.messages[message] : message;
    if (!values) return text;
    return text.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  // One format per kind, as the server's appliance/web/i18n.py: medium date with short time, in UTC.
  const moment = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  const whole = new Intl.NumberFormat(lang);
  function when(value) { return value ? moment.format(new Date(value)) : ""; }
  function number(n) { return whole.format(n); }
  function filesize(bytes) {
    const units = ["byte", "kilobyte", "megabyte", "gigabyte"];
    let value = bytes, i = 0;
    while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
    const digits = i === 0 || value >= 100 ? 0 : 1;
    return new Intl.NumberFormat(lang, { style: "unit", unit: units[i], unitDisplay: "short", maximumFractionDigits: digits }).format(value);
  }

  window.SottoI18n = { t, lang, dir: data.dir, when, number, filesize };
})();
