// Drag and drop for the deals and tickets boards. Moving a card submits the card's own
// form (the same one that works without JavaScript), so the server checks the CSRF token,
// the card's revision and the user's permission exactly as for the no-script path.
(function () {
  'use strict';
  var board = document.getElementById('board');
  if (!board) return;

  // After a move the page comes back with #card-<id>: keep the keyboard focus on that card.
  if (location.hash.indexOf('#card-') === 0) {
    var moved = document.getElementById(location.hash.slice(1));
    if (moved) moved.focus();
  }

  var dragged = null;
  board.addEventListener('dragstart', function (e) {
    var card = e.target.closest ? e.target.closest('.board-card') : null;
    if (!card || !card.querySelector('form.card-move')) return;
    dragged = card;
    card.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.getAttribute('data-id'));
  });
  board.addEventListener('dragend', function () {
    if (dragged) dragged.classList.remove('dragging');
    dragged = null;
    board.querySelectorAll('.drop-target').forEach(function (c) { c.classList.remove('drop-target'); });
  });
  board.addEventListener('dragover', function (e) {
    var col = e.target.closest ? e.target.closest('.board-col') : null;
    if (!col || !dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    board.querySelectorAll('.drop-target').forEach(function (c) {
      if (c !== col) c.classList.remove('drop-target');
    });
    col.classList.add('drop-target');
  });
  board.addEventListener('drop', function (e) {
    var col = e.target.closest ? e.target.closest('.board-col') : null;
    if (!col || !dragged) return;
    e.preventDefault();
    var form = dragged.querySelector('form.card-move');
    var select = form.querySelector('select[name=stage]');
    var stage = col.getAttribute('data-stage');
    if (select.value === stage) return;
    select.value = stage;
    col.querySelector('.board-cards').appendChild(dragged);
    form.requestSubmit(form.querySelector('.move-submit'));
  });
})();
