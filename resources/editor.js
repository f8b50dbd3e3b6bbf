/*
 * Shared by the teleinfo nodes' edit dialogs. Node-RED serves it as resources/node-red-contrib-teleinfo/editor.js
 * and runs it before the node definitions that name it.
 */
window.teleinfoEditor = window.teleinfoEditor || {
  /**
   * The validator of a typedInput that offers the env type: in env mode, the name of an environment variable;
   * otherwise `check(value, opt)` (or anything). `prop` is the property, `type` the node type (its i18n space).
   */
  valueOrEnv: function (prop, type, isConfig, check) {
    return function (v, opt) {
      var field = $('#node-' + (isConfig ? 'config-' : '') + 'input-' + prop + 'Type');
      if ((field.val() || this[prop + 'Type']) !== 'env') return check ? check.call(this, v, opt) : true;
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(v || '')) return true;
      return opt ? this._(type + '.errors.env', { value: v }) : false;
    };
  },
};
